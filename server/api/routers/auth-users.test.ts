import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConsoleFixture, type ConsoleFixture } from "../testing/console-fixture.js";
import { expectTrpcError } from "../testing/expect-error.js";
import { userOfSession } from "../../console/auth/sessions.js";

let f: ConsoleFixture;
beforeAll(async () => {
  f = await startConsoleFixture();
});
afterAll(async () => f?.cleanup());

describe("auth", () => {
  it("signs in with a httpOnly SameSite session cookie that names the user", async () => {
    const cookies: string[] = [];
    const me = await f.as(null, cookies).auth.login({ name: "operator", password: "correct horse battery" });
    expect(me).toEqual({ name: "operator", role: "Operator" });
    const cookie = cookies[0]!;
    expect(cookie).toMatch(/^rm_session=[\w-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+/);
    const token = cookie.split(";")[0]!.split("=")[1];
    const session = await userOfSession(f.db, token);
    expect(session?.user.name).toBe("operator");
    // The database holds only a digest of the token.
    expect(await f.db.session.findUnique({ where: { id: token! } })).toBeNull();
  });

  it("refuses a wrong password and audits the attempt", async () => {
    await expectTrpcError(f.as(null).auth.login({ name: "operator", password: "wrong" }), "UNAUTHORIZED");
    const entry = await f.db.auditEntry.findFirst({ where: { action: "auth.login", result: "failure" }, orderBy: { id: "desc" } });
    expect(entry).toMatchObject({ userName: "operator", error: "the user name or password is not correct" });
    expect(JSON.stringify(entry?.input)).not.toContain("wrong");
  });

  it("refuses a user name for a while after 5 wrong passwords in a row, even with the right one", async () => {
    await f.as("Administrator").users.create({ name: "guessed", role: "Viewer", password: "the right password" });
    for (let i = 0; i < 5; i++) await expectTrpcError(f.as(null).auth.login({ name: "guessed", password: `guess ${i}` }), "UNAUTHORIZED");
    const e = await expectTrpcError(f.as(null).auth.login({ name: "guessed", password: "the right password" }), "TOO_MANY_REQUESTS");
    expect(e.message).toMatch(/try again in (30|29) seconds/);
    // Other names are not affected.
    await expect(f.as(null).auth.login({ name: "viewer", password: "correct horse battery" })).resolves.toMatchObject({ role: "Viewer" });
  });

  it("names the field of bad sign-in input", async () => {
    await expectTrpcError(f.as(null).auth.login({ name: "  ", password: "x" }), "BAD_REQUEST", "name");
    await expectTrpcError(f.as(null).auth.login({ name: "admin", password: "" }), "BAD_REQUEST", "password");
  });

  it("answers who is signed in, and nobody for an anonymous caller", async () => {
    expect(await f.as("Viewer").auth.me()).toMatchObject({ name: "viewer", role: "Viewer" });
    expect(await f.as(null).auth.me()).toBeNull();
  });

  it("signs out: the session is gone and the cookie cleared", async () => {
    const loginCookies: string[] = [];
    await f.as(null, loginCookies).auth.login({ name: "viewer", password: "correct horse battery" });
    const token = loginCookies[0]!.split(";")[0]!.split("=")[1];
    const session = (await userOfSession(f.db, token))!;
    const { createCaller } = await import("../root.js");
    const cookies: string[] = [];
    const caller = createCaller({ db: f.db, fleet: f.fleet, jobs: f.jobs, sessionHours: 1, user: session.user, sessionId: session.sessionId, setCookie: (c) => void cookies.push(c), secure: false });
    await caller.auth.logout();
    expect(await userOfSession(f.db, token)).toBeNull();
    expect(cookies[0]).toContain("Max-Age=0");
    await expectTrpcError(f.as(null).auth.logout(), "UNAUTHORIZED");
  });

  it("changes a password only with the current one", async () => {
    const op = f.as("Operator");
    await expectTrpcError(op.auth.changePassword({ currentPassword: "nope", newPassword: "a new long password" }), "BAD_REQUEST", "currentPassword");
    await expectTrpcError(op.auth.changePassword({ currentPassword: "correct horse battery", newPassword: "short" }), "BAD_REQUEST", "newPassword");
    await op.auth.changePassword({ currentPassword: "correct horse battery", newPassword: "a new long password" });
    await expect(f.as(null).auth.login({ name: "operator", password: "a new long password" })).resolves.toMatchObject({ role: "Operator" });
    await op.auth.changePassword({ currentPassword: "a new long password", newPassword: "correct horse battery" });
  });
});

describe("users", () => {
  it("lets an Administrator create, re-role and remove users", async () => {
    const admin = f.as("Administrator");
    const u = await admin.users.create({ name: "jane", role: "Viewer", password: "0123456789ab" });
    expect(u).toMatchObject({ name: "jane", role: "Viewer" });
    expect(u).not.toHaveProperty("passwordHash");
    expect((await admin.users.list()).map((x) => x.name)).toContain("jane");
    expect(await admin.users.setRole({ id: u.id, role: "Operator" })).toMatchObject({ role: "Operator" });
    await admin.users.remove({ id: u.id });
    expect((await admin.users.list()).map((x) => x.name)).not.toContain("jane");
    const audit = await f.db.auditEntry.findMany({ where: { userName: "administrator", OR: [{ target: "name=jane" }, { target: `id=${u.id}` }] }, orderBy: { id: "asc" } });
    expect(audit.map((a) => `${a.action}:${a.result}`)).toEqual(["users.create:success", "users.setRole:success", "users.remove:success"]);
  });

  it("refuses users.* to Operators and Viewers, and anonymous callers", async () => {
    for (const role of ["Operator", "Viewer"] as const) {
      await expectTrpcError(f.as(role).users.list(), "FORBIDDEN");
      await expectTrpcError(f.as(role).users.create({ name: "x", role: "Administrator", password: "0123456789ab" }), "FORBIDDEN");
    }
    await expectTrpcError(f.as(null).users.list(), "UNAUTHORIZED");
    await expectTrpcError(f.as(null).users.create({ name: "mallory", role: "Administrator", password: "0123456789ab" }), "UNAUTHORIZED");
    expect(await f.db.auditEntry.findFirst({ where: { action: "users.create", target: "name=mallory" } })).toMatchObject({ userName: "anonymous", result: "failure" });
    expect(await f.db.user.findUnique({ where: { name: "x" } })).toBeNull();
    const refused = await f.db.auditEntry.findFirst({ where: { action: "users.create", userName: "viewer" } });
    expect(refused).toMatchObject({ result: "failure" });
  });

  it("names the field of bad input and refuses a taken name", async () => {
    const admin = f.as("Administrator");
    await expectTrpcError(admin.users.create({ name: "bob", role: "Viewer", password: "short" }), "BAD_REQUEST", "password");
    const refused = await f.db.auditEntry.findFirst({ where: { action: "users.create", target: "name=bob" }, orderBy: { id: "desc" } });
    expect(refused).toMatchObject({ result: "failure", error: "password: a password needs at least 10 characters" });
    // @ts-expect-error an unknown role
    await expectTrpcError(admin.users.create({ name: "bob", role: "Root", password: "0123456789ab" }), "BAD_REQUEST", "role");
    await expectTrpcError(admin.users.create({ name: "viewer", role: "Viewer", password: "0123456789ab" }), "CONFLICT", "name");
  });

  it("keeps at least one Administrator and refuses removing oneself", async () => {
    const admin = f.as("Administrator");
    await expectTrpcError(admin.users.setRole({ id: f.users.Administrator.id, role: "Viewer" }), "PRECONDITION_FAILED");
    await expectTrpcError(admin.users.remove({ id: f.users.Administrator.id }), "PRECONDITION_FAILED");
    await expectTrpcError(admin.users.remove({ id: "no-such-user" }), "NOT_FOUND");
  });
});
