/**
 * Health alerts (★): watches the fleet's VM updates and alerts every enabled target when a VM's
 * replication health turns Critical, and again when it returns to Normal after that. While it
 * stays Critical (or wanders through Warning) nothing is repeated. The last alerted health per
 * VM and host comes from the deliveries recorded, so a console restart does not alert again.
 */
import type { Db } from "../console/db/client.js";
import { deliverAlert, deliveryEvent, type AlertPayload } from "./alert-delivery.js";
import type { FleetNotifier } from "./views.js";
import type { VmView } from "./vm-model.js";

export class Alerter {
  /** hostId:vmId → the health last alerted ("Normal" when never). */
  private readonly alerted = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();
  /** Where deliveries go as events (the fleet's notifier this alerter wraps). */
  private notify: FleetNotifier | null = null;

  constructor(private readonly db: Db) {}

  /** The notifier the fleet uses: passes everything on, and looks at every VM update. */
  watching(inner: FleetNotifier): FleetNotifier {
    this.notify = inner;
    return { ...inner, vmChanged: (vm) => (inner.vmChanged(vm), this.observe(vm)) };
  }

  /** Resolves when every VM update seen so far has been judged (and its alerts sent). */
  idle(): Promise<void> {
    return this.chain;
  }

  observe(vm: VmView): void {
    this.chain = this.chain.then(() => this.judge(vm)).catch((err) => console.error("console: alerts", err));
  }

  private async judge(vm: VmView): Promise<void> {
    const r = vm.replication;
    if (!r) return;
    const hostName = r.mode === "Primary" ? r.primaryServer : r.replicaServer;
    const key = `${vm.hostId}:${vm.vmId}`;
    let last = this.alerted.get(key);
    if (last === undefined) {
      const d = await this.db.alertDelivery.findFirst({ where: { vmId: vm.vmId, hostName }, orderBy: { id: "desc" }, select: { health: true } });
      last = d?.health ?? "Normal";
    }
    const turn = r.health === "Critical" && last !== "Critical" ? "Critical" : r.health === "Normal" && last === "Critical" ? "Normal" : null;
    this.alerted.set(key, turn ?? last);
    if (!turn) return;
    const targets = await this.db.alertTarget.findMany({ where: { enabled: true } });
    const payload: AlertPayload = {
      kind: "replication-health",
      health: turn,
      vmId: vm.vmId,
      vmName: vm.name,
      hostName,
      mode: r.mode,
      state: r.state,
      reasons: r.reasons,
      primaryServer: r.primaryServer,
      replicaServer: r.replicaServer,
      at: new Date().toISOString(),
      test: false,
    };
    const deliveries = await Promise.all(targets.map((t) => deliverAlert(this.db, t, payload)));
    if (deliveries.length) this.notify?.events(vm.hostId, deliveries.map((d) => deliveryEvent(d, vm.hostId)));
  }
}
