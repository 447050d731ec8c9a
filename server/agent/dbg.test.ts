import { it } from "vitest";
import { startPair, diskHash, type VmView } from "/work/main/server/agent/testing/harness.js";
it("dbg", async () => {
  const pair = await startPair();
  const { primary, replica } = pair;
  const t = (l: string, s: number) => console.log(l, Date.now() - s);
  let s = Date.now();
  const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "x", disks: [{ sizeBytes: 1024 ** 3 }] });
  t("create", s); s = Date.now();
  await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, authMode: "https", frequencySeconds: 30, startInitialReplication: false });
  t("enable", s); s = Date.now();
  console.log(await primary.api("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`));
  t("initial", s); s = Date.now();
  console.log(await primary.api("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`));
  t("delta", s); s = Date.now();
  await diskHash(primary, vm.id); t("hash", s);
  await pair.cleanup();
});
