"use client";

import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Button } from "@/components/ui/button";
import { Field, inputClass } from "@/components/ui/dialog";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC } from "@/components/lib/trpc";

export function LoginForm() {
  const trpc = useTRPC();
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const login = useMutation(
    trpc.auth.login.mutationOptions({
      // A full navigation, so the server sees the new session cookie for the page itself.
      onSuccess: () => window.location.assign("/"),
    }),
  );
  const fields = fieldErrors(login.error);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    login.mutate({ name, password });
  };
  return (
    <form onSubmit={submit} className="w-[340px] border border-[#707070] bg-chrome shadow-[0_4px_16px_rgba(0,0,0,0.2)]" data-testid="login-form">
      <div className="bg-white px-3 py-2 text-[15px]">Replica Manager</div>
      <div className="p-4">
        <p className="mb-3 text-muted">Sign in to manage your Hyper-V hosts and their replication.</p>
        <Field label="User name:" htmlFor="name" error={fields.name}>
          <input id="name" data-testid="login-name" className={inputClass} autoComplete="username" autoFocus value={name} onChange={(e) => setName(e.target.value)} aria-invalid={!!fields.name} />
        </Field>
        <Field label="Password:" htmlFor="password" error={fields.password}>
          <input
            id="password"
            data-testid="login-password"
            type="password"
            className={inputClass}
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-invalid={!!fields.password}
          />
        </Field>
        {login.error && !Object.keys(fields).length ? (
          <div className="mb-2 text-crit" role="alert" data-testid="login-error">
            {errorMessage(login.error)}
          </div>
        ) : null}
        <div className="flex justify-end">
          <Button type="submit" variant="primary" disabled={login.isPending} data-testid="login-submit">
            {login.isPending ? "Signing in..." : "Sign in"}
          </Button>
        </div>
      </div>
    </form>
  );
}
