/**
 * The management API over mutual TLS, as a console in production reaches its agents: only a
 * client certificate from the site's CA gets in; with a token configured too, either works.
 */
import https from "node:https";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentProcess } from "./agent-process.js";
import { freePort, makeSite, MGMT_TOKEN, tempDir } from "./testing/harness.js";

interface Answer {
  status: number;
  body: string;
}

function get(port: number, path: string, opts: { cert?: string; key?: string; ca: string; token?: string }): Promise<Answer> {
  return new Promise((ok, fail) => {
    const req = https.request(
      { host: "127.0.0.1", port, path, servername: "hv01.lab.test", ca: opts.ca, cert: opts.cert, key: opts.key, headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {} },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => ok({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", fail);
    req.end();
  });
}

describe("management API over mutual TLS", () => {
  let dir: string;
  const agents: AgentProcess[] = [];
  let ca: string;
  let consoleCert: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  const ports: number[] = [];

  beforeAll(async () => {
    dir = await tempDir("rm-mgmt-tls-");
    const site = await makeSite(join(dir, "site"));
    const other = await makeSite(join(dir, "other"), "Someone Else's CA");
    const host = await site.hostTls("hv01.lab.test");
    const consoleFiles = await site.hostTls("console.lab.test");
    const strangerFiles = await other.hostTls("console.evil.test");
    ca = await readFile(site.caFile, "utf8");
    consoleCert = { cert: await readFile(consoleFiles.cert, "utf8"), key: await readFile(consoleFiles.key, "utf8") };
    stranger = { cert: await readFile(strangerFiles.cert, "utf8"), key: await readFile(strangerFiles.key, "utf8") };
    for (const withToken of [false, true]) {
      const port = await freePort();
      ports.push(port);
      const dataDir = join(dir, withToken ? "both" : "tls");
      await mkdir(dataDir, { recursive: true });
      const configFile = join(dataDir, "agent.json");
      await writeFile(
        configFile,
        JSON.stringify({ hostName: "hv01.lab.test", dataDir, management: { port, tls: host, ...(withToken ? { token: MGMT_TOKEN } : {}) } }),
      );
      const agent = new AgentProcess({ hostName: "hv01.lab.test", configFile, managementPort: port, token: MGMT_TOKEN });
      await agent.start();
      agents.push(agent);
    }
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await rm(dir, { recursive: true, force: true });
  });

  it("answers a client certificate from the site's CA", async () => {
    const r = await get(ports[0]!, "/api/v1/host", { ...consoleCert, ca });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ hostName: "hv01.lab.test" });
  });

  it("refuses a client without a certificate, or with one from another CA", async () => {
    await expect(get(ports[0]!, "/api/v1/host", { ca })).rejects.toThrow();
    await expect(get(ports[0]!, "/api/v1/host", { ...stranger, ca })).rejects.toThrow();
  });

  it("with a token as well, accepts either a certificate or the token, and nothing else", async () => {
    expect((await get(ports[1]!, "/api/v1/host", { ...consoleCert, ca })).status).toBe(200);
    expect((await get(ports[1]!, "/api/v1/host", { ca, token: MGMT_TOKEN })).status).toBe(200);
    const none = await get(ports[1]!, "/api/v1/host", { ca });
    expect(none.status).toBe(401);
    expect(none.body).toMatch(/management token/);
    expect((await get(ports[1]!, "/api/v1/host", { ...stranger, ca })).status).toBe(401);
  });
});
