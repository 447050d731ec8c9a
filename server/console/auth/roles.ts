/** The console's roles, weakest first: Viewer reads, Operator also runs VMs and replication, Administrator does everything. */
export const ROLES = ["Viewer", "Operator", "Administrator"] as const;
export type Role = (typeof ROLES)[number];

export function hasRole(role: string, needed: Role): boolean {
  return ROLES.indexOf(role as Role) >= ROLES.indexOf(needed);
}

export interface SessionUser {
  id: string;
  name: string;
  role: Role;
}
