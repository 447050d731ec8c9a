"use client";

import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Button } from "@/components/ui/button";
import { Dialog, Field, inputClass } from "@/components/ui/dialog";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC } from "@/components/lib/trpc";

/** Connect to Server...: enrol a host by its agent's management address and token. */
export function ConnectServerDialog({ onClose, onConnected }: { onClose(): void; onConnected(hostId: string): void }) {
  const trpc = useTRPC();
  const [address, setAddress] = useState("http://");
  const [token, setToken] = useState("");
  const add = useMutation(trpc.hosts.add.mutationOptions({ onSuccess: (h) => onConnected(h.id) }));
  const fields = fieldErrors(add.error);
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    add.mutate({ address, token });
  };
  return (
    <Dialog
      title="Select Computer"
      onClose={onClose}
      testId="connect-dialog"
      footer={
        <>
          <Button variant="primary" data-testid="connect-ok" disabled={add.isPending} onClick={() => submit()}>
            {add.isPending ? "Connecting..." : "OK"}
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </>
      }
    >
      <form onSubmit={submit}>
        <p className="mb-3">Connect to the Replica Manager agent of another computer. The agent prints its management address and token when it starts.</p>
        <Field label="Agent address:" htmlFor="address" error={fields.address}>
          <input id="address" data-testid="connect-address" className={inputClass} value={address} onChange={(e) => setAddress(e.target.value)} aria-invalid={!!fields.address} />
        </Field>
        <Field label="Management token:" htmlFor="token" error={fields.token}>
          <input id="token" data-testid="connect-token" type="password" className={inputClass} value={token} onChange={(e) => setToken(e.target.value)} aria-invalid={!!fields.token} />
        </Field>
        {add.error && !Object.keys(fields).length ? <div className="text-crit" role="alert">{errorMessage(add.error)}</div> : null}
        <button type="submit" hidden />
      </form>
    </Dialog>
  );
}
