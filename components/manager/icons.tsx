/** Small inline icons in the manner of the MMC (no icon font to load). */
export function ServerIcon({ status }: { status: "connecting" | "connected" | "unreachable" }) {
  return (
    <svg width="16" height="16" viewBox="0 0 16 16" aria-hidden className="shrink-0">
      <rect x="2" y="1.5" width="12" height="13" rx="1" fill="#dfe6ee" stroke="#5b6b7c" />
      <line x1="4" y1="5" x2="12" y2="5" stroke="#5b6b7c" />
      <line x1="4" y1="8" x2="12" y2="8" stroke="#5b6b7c" />
      {status === "unreachable" ? <circle cx="12" cy="12" r="3.5" fill="#c42b1c" /> : null}
      {status === "connecting" ? <circle cx="12" cy="12" r="3.5" fill="#d69e00" /> : null}
    </svg>
  );
}

export function ManagerIcon() {
  return (
    <svg width="16" height="16" viewBox="0 0 16 16" aria-hidden className="shrink-0">
      <rect x="1.5" y="3" width="13" height="9" fill="#cfe3f7" stroke="#2e6db4" />
      <rect x="5" y="12.5" width="6" height="2" fill="#2e6db4" />
    </svg>
  );
}

export function VmIcon({ state }: { state: string }) {
  const fill = state === "Running" ? "#5bb75b" : state === "Paused" || state === "Saved" ? "#e3b341" : "#b8c2cc";
  return (
    <svg width="14" height="14" viewBox="0 0 14 14" aria-hidden className="shrink-0">
      <rect x="1" y="2" width="12" height="9" fill={fill} stroke="#4d5b69" />
      <rect x="4" y="11.5" width="6" height="1.5" fill="#4d5b69" />
    </svg>
  );
}
