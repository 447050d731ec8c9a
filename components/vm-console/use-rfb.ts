"use client";

/**
 * noVNC's RFB client on the console's websocket (/api/vm-console). noVNC is loaded in the
 * browser only (it touches `window` when imported). The websocket is ours, not noVNC's, so the
 * close reason the console sends (a refusal, the VM stopping) can be shown.
 */
import type RFB from "@novnc/novnc";
import { useEffect, useRef, useState, type RefObject } from "react";

export type ScreenStatus = { kind: "connecting" } | { kind: "connected"; width: number; height: number } | { kind: "disconnected"; reason: string };

function closeReason(e: CloseEvent): string {
  if (e.reason) return e.reason;
  if (e.code === 1006) return "the connection to the console was lost";
  return `the connection was closed (code ${e.code})`;
}

export function useRfb(target: RefObject<HTMLDivElement | null>, url: string, attempt: number) {
  const rfbRef = useRef<RFB | null>(null);
  const [status, setStatus] = useState<ScreenStatus>({ kind: "connecting" });

  useEffect(() => {
    let cancelled = false;
    let ws: WebSocket | undefined;
    let sizeWatch: MutationObserver | undefined;
    setStatus({ kind: "connecting" });
    const lost = (reason: string) => !cancelled && setStatus((s) => (s.kind === "disconnected" ? s : { kind: "disconnected", reason }));
    // noVNC first: the VNC server speaks first, so the client must listen before the socket opens.
    import("@novnc/novnc")
      .then(({ default: Rfb }) => {
        if (cancelled || !target.current) return;
        ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${url}`);
        ws.addEventListener("close", (e) => lost(closeReason(e)));
        const rfb = new Rfb(target.current, ws, { shared: true });
        rfb.background = "#000000";
        rfb.addEventListener("connect", () => {
          const canvas = target.current?.querySelector("canvas");
          if (!canvas) return;
          const show = () => !cancelled && setStatus((s) => (s.kind === "disconnected" ? s : { kind: "connected", width: canvas.width, height: canvas.height }));
          show();
          // The guest changes its display mode (firmware text mode, then the OS's): the size follows.
          sizeWatch = new MutationObserver(show);
          sizeWatch.observe(canvas, { attributes: true, attributeFilter: ["width", "height"] });
        });
        rfb.addEventListener("disconnect", () => lost("the connection was closed"));
        rfb.addEventListener("securityfailure", (e) => lost(`the VM's VNC server refused: ${(e as CustomEvent<{ reason?: string }>).detail.reason ?? "security failure"}`));
        rfbRef.current = rfb;
      })
      .catch((err: Error) => lost(`the VNC client failed to load: ${err.message}`));
    return () => {
      cancelled = true;
      sizeWatch?.disconnect();
      rfbRef.current?.disconnect();
      rfbRef.current = null;
      ws?.close();
    };
  }, [target, url, attempt]);

  return { rfb: rfbRef, status };
}
