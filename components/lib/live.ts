"use client";

/**
 * Live updates: one socket.io connection per page; what the console broadcasts is merged
 * into TanStack Query's cache (replace, never mutate), and a reconnect refetches everything.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { io, type Socket } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents } from "@/server/realtime/types";
import { useTRPC, type Host, type Vm } from "./trpc";

type ConsoleSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

function upsert<T>(list: T[] | undefined, item: T, same: (a: T) => boolean, order: (a: T, b: T) => number): T[] | undefined {
  if (!list) return list;
  const i = list.findIndex(same);
  const next = i >= 0 ? list.with(i, item) : [...list, item];
  return i >= 0 ? next : next.sort(order);
}

export function useLiveFleet(watchedHostId: string | null): { connected: boolean } {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const socketRef = useRef<ConsoleSocket | null>(null);
  const watched = useRef<string | null>(null);
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    const socket: ConsoleSocket = io({ path: "/socket.io", transports: ["websocket"] });
    socketRef.current = socket;
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    socket.on("connect", () => {
      setConnected(true);
      if (watched.current) socket.emit("host:watch", watched.current);
      void qc.invalidateQueries();
    });
    socket.on("disconnect", () => setConnected(false));
    socket.on("host:update", (host) =>
      qc.setQueryData<Host[]>(trpc.hosts.list.queryKey(), (old) => upsert(old, host, (h) => h.id === host.id, byName)),
    );
    socket.on("host:remove", (id) => qc.setQueryData<Host[]>(trpc.hosts.list.queryKey(), (old) => old?.filter((h) => h.id !== id)));
    socket.on("vm:update", (vm) =>
      qc.setQueryData<Vm[]>(trpc.vms.list.queryKey({ hostId: vm.hostId }), (old) => upsert(old, vm, (v) => v.vmId === vm.vmId, byName)),
    );
    socket.on("vm:remove", ({ hostId, vmId }) => qc.setQueryData<Vm[]>(trpc.vms.list.queryKey({ hostId }), (old) => old?.filter((v) => v.vmId !== vmId)));
    socket.on("events:new", (events) => {
      const hostId = events[0]?.hostId;
      if (hostId) void qc.invalidateQueries({ queryKey: trpc.events.list.pathKey() });
    });
    return () => {
      socket.close();
      socketRef.current = null;
    };
  }, [qc, trpc]);

  useEffect(() => {
    const socket = socketRef.current;
    if (watched.current && watched.current !== watchedHostId) socket?.emit("host:unwatch", watched.current);
    watched.current = watchedHostId;
    if (watchedHostId && socket?.connected) socket.emit("host:watch", watchedHostId);
  }, [watchedHostId]);

  return { connected };
}

/** The current time, ticking once a second (for uptime). */
export function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}
