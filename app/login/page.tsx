import { LoginForm } from "@/components/login-form";

export const metadata = { title: "Sign in - Replica Manager" };

export default function LoginPage() {
  return (
    <main className="flex h-full items-center justify-center bg-[#e9eef4]">
      <LoginForm />
    </main>
  );
}
