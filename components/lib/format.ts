/** Values as Hyper-V Manager shows them. */

export function formatMemoryMB(mib: number): string {
  return mib > 0 ? `${mib} MB` : "";
}

/** d.hh:mm:ss, as Hyper-V shows uptime; empty when not running. */
export function formatUptime(upSince: string | null, now: number): string {
  if (!upSince) return "";
  let s = Math.max(0, Math.floor((now - Date.parse(upSince)) / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hh = String(Math.floor(s / 3600)).padStart(2, "0");
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return `${d > 0 ? `${d}.` : ""}${hh}:${mm}:${ss}`;
}

export function formatBytes(n: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDateTime(iso: string | null): string {
  if (!iso) return "Never";
  const d = new Date(iso);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

export function formatFrequency(seconds: number): string {
  return seconds < 60 ? `${seconds} seconds` : `${seconds / 60} minutes`;
}
