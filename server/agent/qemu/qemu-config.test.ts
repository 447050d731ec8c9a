/** The agent's configuration chooses the hypervisor; a wrong value names the key and the choices. */
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../config.js";

const base = { hostName: "hv01.lab.test", dataDir: "/tmp/rm-config-test", management: { token: "0123456789abcdef" } };

describe("agent configuration: hypervisor", () => {
  it("defaults to lab and accepts qemu", () => {
    expect(parseConfig(base).hypervisor).toBe("lab");
    expect(parseConfig({ ...base, hypervisor: "qemu" }).hypervisor).toBe("qemu");
  });

  it("refuses anything else, naming the key and the choices", () => {
    expect(() => parseConfig({ ...base, hypervisor: "xen" })).toThrow(ConfigError);
    expect(() => parseConfig({ ...base, hypervisor: "xen" })).toThrow(/hypervisor: hypervisor must be 'lab' .* or 'qemu'/);
  });
});
