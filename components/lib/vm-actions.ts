/** Which actions a VM offers in its state, and who may use them (the server checks again). */
import { hasRole, type Role } from "@/server/console/auth/roles";
import type { Vm } from "./trpc";

export type { Role };
export type PowerAction = "start" | "shutdown" | "turn-off" | "save" | "pause" | "resume";

export const POWER_ACTIONS: { action: PowerAction; label: string; from: Vm["state"][]; progress: string; confirm?: string }[] = [
  { action: "start", label: "Start", from: ["Off", "Saved"], progress: "Starting..." },
  { action: "shutdown", label: "Shut Down...", from: ["Running"], progress: "Shutting down...", confirm: "Are you sure you want to shut down" },
  { action: "turn-off", label: "Turn Off...", from: ["Running", "Paused", "Saved"], progress: "Turning off...", confirm: "Turning off the virtual machine is like pulling its power cord. Turn off" },
  { action: "save", label: "Save", from: ["Running", "Paused"], progress: "Saving..." },
  { action: "pause", label: "Pause", from: ["Running"], progress: "Pausing..." },
  { action: "resume", label: "Resume", from: ["Paused"], progress: "Resuming..." },
];

export const mayOperate = (role: Role | undefined) => role !== undefined && hasRole(role, "Operator");
export const mayAdminister = (role: Role | undefined) => role !== undefined && hasRole(role, "Administrator");

export function powerAllowed(vm: Vm, action: PowerAction): boolean {
  const spec = POWER_ACTIONS.find((a) => a.action === action)!;
  if (action === "start" && vm.isReplica) return false;
  return spec.from.includes(vm.state);
}

export function deleteAllowed(vm: Vm): boolean {
  return vm.state === "Off" && vm.replication === null;
}
