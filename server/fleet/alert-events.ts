/** Alert deliveries for a host's events pane, filtered as the pane asks. */
import type { Db } from "../console/db/client.js";
import { deliveryEvent } from "./alert-delivery.js";
import type { EventView } from "./views.js";

export async function alertEvents(db: Db, host: { id: string; name: string }, filter: { severity?: EventView["severity"][]; vmId?: string; limit: number }): Promise<EventView[]> {
  const rows = await db.alertDelivery.findMany({
    where: { hostName: host.name, ...(filter.vmId ? { vmId: filter.vmId } : {}) },
    orderBy: { id: "desc" },
    take: filter.limit,
    include: { target: { select: { name: true, kind: true } } },
  });
  const events = rows.map((d) => deliveryEvent(d, host.id));
  return filter.severity ? events.filter((e) => filter.severity!.includes(e.severity)) : events;
}
