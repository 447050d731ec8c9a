import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MGMT_TOKEN } from "../../agent/testing/harness.js";
import type { ReplicaServerSettings } from "../../shared/agent-api.js";
import { startConsoleFixture, type ConsoleFixture } from "../testing/console-fixture.js";
import { expectTrpcError, fieldErrorsOf } from "../testing/expect-error.js";

let f: ConsoleFixture;
let hostId: string;
let current: ReplicaServerSettings;
beforeAll(async () => {
  f = await startConsoleFixture();
  hostId = (await f.as("Administrator").hosts.add({ auth: "token", address: f.pair.replica.url, token: MGMT_TOKEN })).id;
});
afterAll(async () => f?.cleanup());

describe("Replication Configuration (replicaServer)", () => {
  it("shows any signed-in user the host's Replica server settings", async () => {
    current = await f.as("Viewer").replicaServer.get({ hostId });
    expect(current).toMatchObject({ enabled: true, https: { enabled: true, port: f.pair.replica.ports.https }, authorization: { mode: "any" } });
    await expectTrpcError(f.as(null).replicaServer.get({ hostId }), "UNAUTHORIZED");
  });

  it("lets an Administrator switch to authorization entries; the agent stores them", async () => {
    const entries = [{ primaryServer: "*.lab.test", storageLocation: join(f.pair.dir, "site-a"), trustGroup: "SITE-A" }];
    const saved = await f.as("Administrator").replicaServer.update({ hostId, settings: { ...current, authorization: { mode: "entries", entries } } });
    expect(saved.authorization).toEqual({ mode: "entries", entries });
    expect(await f.pair.replica.ok("GET", "/api/v1/replica-server")).toMatchObject({ authorization: { mode: "entries", entries } });
  });

  it("refuses the change to Operators and Viewers", async () => {
    for (const role of ["Operator", "Viewer"] as const) {
      await expectTrpcError(f.as(role).replicaServer.update({ hostId, settings: { ...current, enabled: false } }), "FORBIDDEN");
    }
    expect(await f.pair.replica.ok("GET", "/api/v1/replica-server")).toMatchObject({ enabled: true });
  });

  it("names the field of bad settings, its own checks and the agent's alike", async () => {
    const admin = f.as("Administrator");
    const entry = { primaryServer: "hv01.lab.test", storageLocation: "relative/path", trustGroup: "bad group!" };
    const e = await expectTrpcError(admin.replicaServer.update({ hostId, settings: { ...current, authorization: { mode: "entries", entries: [entry] } } }), "BAD_REQUEST");
    expect(Object.keys(fieldErrorsOf(e))).toEqual(expect.arrayContaining(["settings.authorization.entries.0.storageLocation", "settings.authorization.entries.0.trustGroup"]));
    await expectTrpcError(admin.replicaServer.update({ hostId, settings: { ...current, http: { enabled: true, port: 9999 }, https: { enabled: true, port: 9999 } } }), "BAD_REQUEST", "settings.http.port");
    // A port another process holds: the agent answers PORT_IN_USE, keeps its settings.
    const busy = await expectTrpcError(admin.replicaServer.update({ hostId, settings: { ...current, https: { enabled: true, port: f.pair.primary.ports.https } } }), "CONFLICT", "settings.https.port");
    expect(busy.message).toMatch(/port/i);
    expect(await f.pair.replica.ok("GET", "/api/v1/replica-server")).toMatchObject({ https: { port: f.pair.replica.ports.https } });
  });
});
