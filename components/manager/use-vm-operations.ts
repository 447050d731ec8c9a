"use client";

/**
 * Power actions and delete for VMs: an in-progress label per VM while the agent works, and a
 * toast tied to the VM when the agent refuses.
 */
import { useMutation } from "@tanstack/react-query";
import { useCallback, useState } from "react";
import { errorMessage } from "@/components/lib/errors";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { POWER_ACTIONS, type PowerAction } from "@/components/lib/vm-actions";

export interface Toast {
  id: number;
  title: string;
  message: string;
}

export function useVmOperations() {
  const trpc = useTRPC();
  const [pending, setPending] = useState<Record<string, string>>({});
  const [toasts, setToasts] = useState<Toast[]>([]);
  const power = useMutation(trpc.vms.power.mutationOptions());
  const del = useMutation(trpc.vms.delete.mutationOptions());

  const toast = useCallback((title: string, message: string) => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t, { id, title, message }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), 12_000);
  }, []);

  const track = useCallback(
    async (vm: Vm, label: string, failure: string, work: () => Promise<unknown>) => {
      const key = `${vm.hostId}/${vm.vmId}`;
      setPending((p) => ({ ...p, [key]: label }));
      try {
        await work();
      } catch (err) {
        toast(`${failure} '${vm.name}'`, errorMessage(err));
      } finally {
        setPending(({ [key]: _, ...rest }) => rest);
      }
    },
    [toast],
  );

  const runPower = useCallback(
    (vm: Vm, action: PowerAction) => {
      const spec = POWER_ACTIONS.find((a) => a.action === action)!;
      void track(vm, spec.progress, `Could not ${spec.label.replace("...", "").toLowerCase()}`, () => power.mutateAsync({ hostId: vm.hostId, vmId: vm.vmId, action }));
    },
    [power, track],
  );

  const remove = useCallback((vm: Vm) => void track(vm, "Deleting...", "Could not delete", () => del.mutateAsync({ hostId: vm.hostId, vmId: vm.vmId })), [del, track]);

  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);

  return { pending, toasts, runPower, remove, toast, dismiss };
}
