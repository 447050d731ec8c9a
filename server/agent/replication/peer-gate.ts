/**
 * Who may talk to the Replica server: a primary is authorized by an entry of the Replica server
 * settings (or "any authenticated server"), and a relationship only ever hears from primaries
 * of the trust group it was first replicated under. Every refusal is an event.
 */
import type { ReplicaServerSettings } from "../../shared/agent-api.js";
import type { EventLog } from "../state/events.js";
import type { ReplicaRecord } from "../state/relationships.js";
import { authorizePrimary, type Authorized } from "../transport/authorization.js";
import type { StreamAuth } from "./stream-auth.js";

export interface Peer {
  name: string;
  via: "https" | "http";
  /** HTTP mode: the shared token and this request's nonce, which sign stream and ack. */
  auth?: StreamAuth;
}

export class PeerGate {
  constructor(
    private readonly settings: () => ReplicaServerSettings,
    private readonly events: EventLog,
  ) {}

  /** The entry that authorizes this primary (for a relationship's trust group, if given); throws if none. */
  authorize(peer: Peer, trustGroup?: string): Authorized {
    return authorizePrimary(this.settings(), peer.name, trustGroup);
  }

  /** authorize, a refusal recorded as an event (of the relationship, when there is one). */
  admit(peer: Peer, rec?: ReplicaRecord): Authorized {
    try {
      return this.authorize(peer, rec?.trustGroup);
    } catch (err) {
      this.refused(peer, (err as Error).message, rec);
      throw err;
    }
  }

  refused(peer: Peer, reason: string, rec?: ReplicaRecord): void {
    this.events.emit({
      severity: "error",
      kind: "replica.refused",
      vmId: rec?.vmId,
      relationshipId: rec?.id,
      message: `Replication request from '${peer.name}' over ${peer.via.toUpperCase()} was refused: ${reason}`,
      data: { peer: peer.name, via: peer.via },
    });
  }
}
