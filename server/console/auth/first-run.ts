/** On a new database: an Administrator with a generated password, which is shown once. */
import type { Db } from "../db/client.js";
import { generatePassword, hashPassword } from "./password.js";

export async function ensureAdministrator(db: Db): Promise<{ name: string; password: string } | null> {
  if ((await db.user.count()) > 0) return null;
  const password = generatePassword();
  const name = "admin";
  await db.user.create({ data: { name, passwordHash: await hashPassword(password), role: "Administrator" } });
  await db.auditEntry.create({ data: { userName: "system", action: "users.create", target: name, result: "success", input: { role: "Administrator", firstRun: true } } });
  return { name, password };
}
