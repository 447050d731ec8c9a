/**
 * Replica-side authorization: which primaries may replicate here, into which storage, in
 * which trust group. Refusals must say who was refused and what to change.
 */
import { describe, expect, it } from "vitest";
import type { AuthorizationEntry, ReplicaServerSettings } from "../../shared/agent-api.js";
import { AgentError } from "../errors.js";
import { authorizePrimary, matchesPattern } from "./authorization.js";

function settings(authorization: ReplicaServerSettings["authorization"], enabled = true): ReplicaServerSettings {
  return { enabled, http: { enabled: true, port: 8080 }, https: { enabled: true, port: 8443 }, authorization };
}

function entries(...list: AuthorizationEntry[]): ReplicaServerSettings {
  return settings({ mode: "entries", entries: list });
}

const e = (primaryServer: string, storageLocation: string, trustGroup = "DEFAULT"): AuthorizationEntry => ({ primaryServer, storageLocation, trustGroup });

/** Runs fn and returns the AgentError it throws (failing the test if it does not throw one). */
function refusal(fn: () => unknown): AgentError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return err as AgentError;
  }
  throw new Error("expected a refusal, but the primary was authorized");
}

describe("matchesPattern", () => {
  it("matches exact names, case-insensitively", () => {
    expect(matchesPattern("hv01.example.com", "hv01.example.com")).toBe(true);
    expect(matchesPattern("HV01.Example.COM", "hv01.example.com")).toBe(true);
    expect(matchesPattern("hv01.example.com", "HV01.EXAMPLE.com")).toBe(true);
    expect(matchesPattern("hv01.example.com", "hv02.example.com")).toBe(false);
    expect(matchesPattern("hv01.example.com", "hv01.example.com.evil.org")).toBe(false);
    expect(matchesPattern("hv01.example.com", "xhv01.example.com")).toBe(false);
  });

  it("a leading wildcard matches one or more labels under the domain, never the domain itself", () => {
    expect(matchesPattern("*.example.com", "a.example.com")).toBe(true);
    expect(matchesPattern("*.example.com", "a.b.example.com")).toBe(true);
    expect(matchesPattern("*.Example.com", "A.EXAMPLE.COM")).toBe(true);
    expect(matchesPattern("*.example.com", "example.com")).toBe(false);
    expect(matchesPattern("*.example.com", "badexample.com")).toBe(false);
    expect(matchesPattern("*.example.com", ".example.com")).toBe(false);
    expect(matchesPattern("*.example.com", "a.example.com.org")).toBe(false);
    expect(matchesPattern("*.example.com", "a.example.org")).toBe(false);
  });

  it('"*" matches any server', () => {
    for (const s of ["a", "hv01.example.com", "10.0.0.1", "X.Y.Z"]) expect(matchesPattern("*", s)).toBe(true);
  });

  it("a pattern is not a regular expression or glob beyond its leading label", () => {
    expect(matchesPattern("hv0?.example.com", "hv01.example.com")).toBe(false);
    expect(matchesPattern("hv01.*.com", "hv01.example.com")).toBe(false);
  });
});

describe("authorizePrimary", () => {
  it("refuses everyone when this host is not enabled as a Replica server, saying how to enable it", () => {
    const s = settings({ mode: "any", defaultStorageLocation: "/var/lib/replicas", trustGroup: "DEFAULT" }, false);
    const err = refusal(() => authorizePrimary(s, "hv01.example.com"));
    expect(err.status).toBe(403);
    expect(err.code).toBe("FORBIDDEN");
    expect(err.message).toMatch(/not enabled as a Replica server/);
    expect(err.message).toMatch(/enable it in Replication Configuration/);
  });

  describe('mode "any"', () => {
    const s = settings({ mode: "any", defaultStorageLocation: "/var/lib/replicas", trustGroup: "LAB" });

    it("admits any primary into the default storage and trust group", () => {
      expect(authorizePrimary(s, "hv01.example.com")).toEqual({ storageLocation: "/var/lib/replicas", trustGroup: "LAB" });
      expect(authorizePrimary(s, "anything.else.org")).toEqual({ storageLocation: "/var/lib/replicas", trustGroup: "LAB" });
    });

    it("admits a replica VM's updates only when its trust group is this server's", () => {
      expect(authorizePrimary(s, "hv01.example.com", "LAB")).toEqual({ storageLocation: "/var/lib/replicas", trustGroup: "LAB" });
      const err = refusal(() => authorizePrimary(s, "hv01.example.com", "PROD"));
      expect(err.status).toBe(403);
      expect(err.message).toContain("'hv01.example.com'");
      expect(err.message).toContain("'PROD'");
    });
  });

  describe('mode "entries"', () => {
    const exact = e("hv01.lab.example.com", "/srv/exact", "G1");
    const narrow = e("*.lab.example.com", "/srv/lab", "G1");
    const wide = e("*.example.com", "/srv/example", "G2");
    const any = e("*", "/srv/any", "G3");

    it("the most specific matching entry wins, whatever the order of the entries", () => {
      const cases: [string, string][] = [
        ["hv01.lab.example.com", "/srv/exact"],
        ["HV01.LAB.EXAMPLE.COM", "/srv/exact"],
        ["hv02.lab.example.com", "/srv/lab"],
        ["x.y.lab.example.com", "/srv/lab"],
        ["hv09.example.com", "/srv/example"],
        ["lab.example.com", "/srv/example"], // *.lab.example.com does not match the domain itself
        ["hv01.other.org", "/srv/any"],
      ];
      const orders = [
        [exact, narrow, wide, any],
        [any, wide, narrow, exact],
        [wide, any, exact, narrow],
      ];
      for (const order of orders) {
        for (const [primary, storage] of cases) {
          expect(authorizePrimary(entries(...order), primary).storageLocation, `${primary} with ${order.map((x) => x.primaryServer).join(", ")}`).toBe(storage);
        }
      }
    });

    it("returns the trust group of the chosen entry", () => {
      expect(authorizePrimary(entries(exact, wide), "hv01.lab.example.com")).toEqual({ storageLocation: "/srv/exact", trustGroup: "G1" });
      expect(authorizePrimary(entries(exact, wide), "hv05.example.com")).toEqual({ storageLocation: "/srv/example", trustGroup: "G2" });
    });

    it("refuses a primary no entry matches, naming it and suggesting an entry for its domain", () => {
      const err = refusal(() => authorizePrimary(entries(exact, wide), "hv01.corp.other.org"));
      expect(err.status).toBe(403);
      expect(err.message).toContain("'hv01.corp.other.org'");
      expect(err.message).toMatch(/no authorization entry/);
      expect(err.message).toContain("*.corp.other.org");
    });

    it("refuses everyone when there are no entries", () => {
      const err = refusal(() => authorizePrimary(entries(), "hv01.example.com"));
      expect(err.message).toContain("'hv01.example.com'");
      expect(err.message).toContain("add an entry");
    });

    it("with a trust group, only entries of that group count; the most specific of them wins", () => {
      const g2narrow = e("*.lab.example.com", "/srv/g2-lab", "G2");
      const s = entries(exact, narrow, wide, g2narrow, any);
      expect(authorizePrimary(s, "hv01.lab.example.com", "G1")).toEqual({ storageLocation: "/srv/exact", trustGroup: "G1" });
      expect(authorizePrimary(s, "hv01.lab.example.com", "G2")).toEqual({ storageLocation: "/srv/g2-lab", trustGroup: "G2" });
      expect(authorizePrimary(s, "hv01.lab.example.com", "G3")).toEqual({ storageLocation: "/srv/any", trustGroup: "G3" });
    });

    it("refuses a primary outside the replica VM's trust group, naming the server, the group and its groups", () => {
      const err = refusal(() => authorizePrimary(entries(exact, wide), "hv01.lab.example.com", "G9"));
      expect(err.status).toBe(403);
      expect(err.message).toContain("'hv01.lab.example.com'");
      expect(err.message).toContain("'G9'");
      expect(err.message).toMatch(/G1, G2|G2, G1/);
    });
  });
});
