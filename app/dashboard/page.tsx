import type { Metadata } from "next";
import { WallDashboard } from "@/components/dashboard/wall-dashboard";

export const metadata: Metadata = { title: "Replication Health - Replica Manager" };

/** The wall dashboard: a signed-in user, or anyone holding a read-only link (?key=…). */
export default async function DashboardPage({ searchParams }: { searchParams: Promise<{ key?: string | string[] }> }) {
  const { key } = await searchParams;
  return <WallDashboard dashboardKey={typeof key === "string" ? key : null} />;
}
