import { HyperVManager } from "@/components/manager/hyperv-manager";

export default function Home() {
  return <HyperVManager />;
}
