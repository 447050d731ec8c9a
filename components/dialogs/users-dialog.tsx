"use client";

/** Users and roles (Administrators only): add a user, change a role, remove a user. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Button } from "@/components/ui/button";
import { Dialog, Field, inputClass } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC } from "@/components/lib/trpc";
import { ROLES as ALL_ROLES, type Role } from "@/server/console/auth/roles";

// Strongest first, as an administrator reads them.
const ROLES = [...ALL_ROLES].reverse() as Role[];

export function UsersDialog({ me, onClose }: { me: string; onClose(): void }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const users = useQuery(trpc.users.list.queryOptions());
  const refresh = () => qc.invalidateQueries({ queryKey: trpc.users.list.queryKey() });
  const [draft, setDraft] = useState({ name: "", role: "Operator" as Role, password: "" });
  const create = useMutation(trpc.users.create.mutationOptions({ onSuccess: () => (setDraft({ name: "", role: "Operator", password: "" }), refresh()) }));
  const setRole = useMutation(trpc.users.setRole.mutationOptions({ onSettled: refresh }));
  const remove = useMutation(trpc.users.remove.mutationOptions({ onSettled: refresh }));
  const errors = fieldErrors(create.error);
  const failure = setRole.error ?? remove.error ?? (create.error && !Object.keys(errors).length ? create.error : null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate(draft);
  };
  return (
    <Dialog title="Users" onClose={onClose} testId="users-dialog" className="w-[620px]" footer={<Button onClick={onClose}>Close</Button>}>
      <table className="mb-3 w-full border-collapse">
        <thead>
          <tr className="bg-header text-left">
            <th className="border border-border-light px-1 font-normal">User name</th>
            <th className="border border-border-light px-1 font-normal">Role</th>
            <th className="w-[70px] border border-border-light" />
          </tr>
        </thead>
        <tbody>
          {(users.data ?? []).map((u) => (
            <tr key={u.id} data-testid={`user-${u.name}`}>
              <td className="border border-border-light px-1">{u.name}</td>
              <td className="border border-border-light p-[2px]">
                <select aria-label={`Role of ${u.name}`} className={inputClass} value={u.role} onChange={(e) => setRole.mutate({ id: u.id, role: e.target.value as Role })}>
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td className="border border-border-light px-1">
                <button className={cn("text-link hover:underline", u.name === me && "invisible")} onClick={() => remove.mutate({ id: u.id })}>
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {failure ? (
        <div className="mb-2 text-crit" role="alert">
          {errorMessage(failure)}
        </div>
      ) : null}
      <form onSubmit={submit} className="border border-border-light p-2">
        <div className="mb-1 font-semibold">Add a user</div>
        <div className="flex gap-2">
          <div className="flex-1">
            <Field label="User name:" htmlFor="new-user-name" error={errors.name}>
              <input id="new-user-name" data-testid="new-user-name" className={inputClass} value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} />
            </Field>
          </div>
          <div className="w-[130px]">
            <Field label="Role:" htmlFor="new-user-role" error={errors.role}>
              <select id="new-user-role" data-testid="new-user-role" className={inputClass} value={draft.role} onChange={(e) => setDraft({ ...draft, role: e.target.value as Role })}>
                {ROLES.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            </Field>
          </div>
          <div className="flex-1">
            <Field label="Password (10 characters or more):" htmlFor="new-user-password" error={errors.password}>
              <input id="new-user-password" data-testid="new-user-password" type="password" className={inputClass} value={draft.password} onChange={(e) => setDraft({ ...draft, password: e.target.value })} />
            </Field>
          </div>
        </div>
        <div className="flex justify-end">
          <Button type="submit" data-testid="new-user-add" disabled={create.isPending}>
            Add
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
