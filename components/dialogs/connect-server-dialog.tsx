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
  const [auth, setAuth] = useState<"token" | "certificate">("token");
  const add = useMutation(trpc.hosts.add.mutationOptions({ onSuccess: (h) => onConnected(h.id) }));
  const fields = fieldErrors(add.error);
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    add.mutate(auth === "token" ? { auth, address, token } : { auth, address });
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
        <p className="mb-3">Connect to the Replica Manager agent of another computer: its management address, and how the console proves who it is.</p>
        <Field label="Agent address:" htmlFor="address" error={fields.address}>
          <input id="address" data-testid="connect-address" className={inputClass} value={address} onChange={(e) => setAddress(e.target.value)} aria-invalid={!!fields.address} />
        </Field>
        <fieldset className="mb-2 border border-border-light p-2">
          <legend className="px-1">Connect using</legend>
          <label className="flex items-center gap-2">
            <input type="radio" name="auth" data-testid="connect-auth-token" checked={auth === "token"} onChange={() => setAuth("token")} />
            The agent&apos;s management token (HTTP; lab setups)
          </label>
          {auth === "token" ? (
            <div className="ml-6">
              <Field label="Management token:" htmlFor="token" error={fields.token}>
                <input id="token" data-testid="connect-token" type="password" className={inputClass} value={token} onChange={(e) => setToken(e.target.value)} aria-invalid={!!fields.token} />
              </Field>
            </div>
          ) : null}
          <label className="flex items-center gap-2">
            <input type="radio" name="auth" data-testid="connect-auth-certificate" checked={auth === "certificate"} onChange={() => (setAuth("certificate"), setAddress((a) => (a === "http://" ? "https://" : a)))} />
            The console&apos;s certificate (HTTPS with mutual TLS)
          </label>
          {fields.auth ? <div className="ml-6 text-crit" data-testid="error-auth">{fields.auth.join(" ")}</div> : null}
        </fieldset>
        {add.error && !Object.keys(fields).length ? <div className="text-crit" role="alert">{errorMessage(add.error)}</div> : null}
        <button type="submit" hidden />
      </form>
    </Dialog>
  );
}
