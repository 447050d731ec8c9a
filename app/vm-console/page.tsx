import type { Metadata } from "next";
import { VmConsole } from "@/components/vm-console/vm-console";

export const metadata: Metadata = { title: "Virtual Machine Connection - Replica Manager" };

/** Connect...: a QEMU VM's screen (its window is opened by the manager). */
export default async function VmConsolePage({ searchParams }: { searchParams: Promise<{ hostId?: string | string[]; vmId?: string | string[] }> }) {
  const { hostId, vmId } = await searchParams;
  const one = (v: string | string[] | undefined) => (typeof v === "string" ? v : "");
  return <VmConsole hostId={one(hostId)} vmId={one(vmId)} />;
}
