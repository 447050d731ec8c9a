/** When a required resynchronization starts on its own: at its scheduled time, automatically, or in its window. */
import { describe, expect, it } from "vitest";
import { resyncDue } from "./resync.js";

/** Today at hh:mm local time (the window is in the host's local time, as in Hyper-V). */
const at = (hhmm: string) => {
  const d = new Date(2026, 10, 22, Number(hhmm.slice(0, 2)), Number(hhmm.slice(3)));
  return d.getTime();
};

describe("resyncDue", () => {
  it("manual waits for the administrator, unless a time was scheduled and has come", () => {
    expect(resyncDue({ resyncPolicy: { mode: "manual" } }, at("03:00"))).toBe(false);
    expect(resyncDue({}, at("03:00"))).toBe(false);
    const scheduled = new Date(at("02:30")).toISOString();
    expect(resyncDue({ resyncPolicy: { mode: "manual" }, resyncAt: scheduled }, at("02:29"))).toBe(false);
    expect(resyncDue({ resyncPolicy: { mode: "manual" }, resyncAt: scheduled }, at("02:30"))).toBe(true);
  });

  it("automatic starts at once", () => {
    expect(resyncDue({ resyncPolicy: { mode: "automatic" }, resyncAt: null }, at("12:00"))).toBe(true);
  });

  it("a window starts inside it only, its end excluded", () => {
    const policy = { mode: "window" as const, start: "18:30", end: "23:00" };
    expect(resyncDue({ resyncPolicy: policy }, at("18:29"))).toBe(false);
    expect(resyncDue({ resyncPolicy: policy }, at("18:30"))).toBe(true);
    expect(resyncDue({ resyncPolicy: policy }, at("22:59"))).toBe(true);
    expect(resyncDue({ resyncPolicy: policy }, at("23:00"))).toBe(false);
  });

  it("a window may span midnight", () => {
    const policy = { mode: "window" as const, start: "22:00", end: "06:00" };
    for (const t of ["22:00", "23:59", "00:00", "05:59"]) expect(resyncDue({ resyncPolicy: policy }, at(t)), t).toBe(true);
    for (const t of ["06:00", "12:00", "21:59"]) expect(resyncDue({ resyncPolicy: policy }, at(t)), t).toBe(false);
  });
});
