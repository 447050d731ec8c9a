"use client";

/**
 * Live updates: one socket.io connection per page; what the console broadcasts is merged
 * into TanStack Query's cache (replace, never mutate), and a reconnect refetches everything.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { io, type Socket } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents } from "@/server/realtime/types";
import { useTRPC, type Host, type Job, type Vm } from "./trpc";

/** The Jobs pane's query, which live updates keep current. */
export const JOBS_QUERY = { limit: 100 };

type ConsoleSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

function upsert<T>(list: T[] | undefined, item: T, same: (a: T) => boolean, order: (a: T, b: T) => number): T[] | undefined {
  if (!list) return list;
  const i = list.findIndex(same);
  const next = i >= 0 ? list.with(i, item) : [...list, item];
  return i >= 0 ? next : next.sort(order);
}

/** `watched`: a host id, ALL_HOSTS for every host's VMs, or null. */
export const ALL_HOSTS = "all";

function watch(socket: ConsoleSocket, target: string, on: boolean): void {
  if (target === ALL_HOSTS) socket.emit(on ? "fleet:watch" : "fleet:unwatch");
  else socket.emit(on ? "host:watch" : "host:unwatch", target);
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
      if (watched.current) watch(socket, watched.current, true);
      void qc.invalidateQueries();
    });
    socket.on("disconnect", () => setConnected(false));
    // The server refuses a socket without a valid session: back to the sign-in.
    socket.on("connect_error", (err) => err.message === "sign in first" && window.location.assign("/login"));
    socket.on("host:update", (host) =>
      qc.setQueryData<Host[]>(trpc.hosts.list.queryKey(), (old) => upsert(old, host, (h) => h.id === host.id, byName)),
    );
    socket.on("host:remove", (id) => qc.setQueryData<Host[]>(trpc.hosts.list.queryKey(), (old) => old?.filter((h) => h.id !== id)));
    const same = (a: { hostId: string; vmId: string }) => (b: Vm) => b.hostId === a.hostId && b.vmId === a.vmId;
    socket.on("vm:update", (vm) => {
      for (const input of [{ hostId: vm.hostId }, {}]) qc.setQueryData<Vm[]>(trpc.vms.list.queryKey(input), (old) => upsert(old, vm, same(vm), byName));
    });
    socket.on("vm:remove", (ref) => {
      for (const input of [{ hostId: ref.hostId }, {}]) qc.setQueryData<Vm[]>(trpc.vms.list.queryKey(input), (old) => old?.filter((v) => !same(ref)(v)));
    });
    socket.on("job:update", (job) => {
      qc.setQueryData<Job[]>(trpc.jobs.list.queryKey(JOBS_QUERY), (old) => (old ? [job, ...old.filter((j) => j.id !== job.id)].sort((a, b) => b.createdAt.localeCompare(a.createdAt)) : old));
      qc.setQueryData<Job>(trpc.jobs.get.queryKey({ id: job.id }), job);
    });
    socket.on("vm:metrics", ({ hostId, changes }) => {
      const cpu = new Map(changes.map((c) => [c.vmId, c.cpuUsagePercent]));
      const merge = (old: Vm[] | undefined) => old?.map((v) => (v.hostId === hostId && cpu.has(v.vmId) ? { ...v, cpuUsagePercent: cpu.get(v.vmId)! } : v));
      for (const input of [{ hostId }, {}]) qc.setQueryData<Vm[]>(trpc.vms.list.queryKey(input), merge);
    });
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
    if (socket && watched.current && watched.current !== watchedHostId) watch(socket, watched.current, false);
    watched.current = watchedHostId;
    if (socket?.connected && watchedHostId) watch(socket, watchedHostId, true);
    // Changes made while another host was watched never reached this list: read it again.
    if (watchedHostId) void qc.invalidateQueries({ queryKey: trpc.vms.list.queryKey(watchedHostId === ALL_HOSTS ? {} : { hostId: watchedHostId }) });
  }, [watchedHostId, qc, trpc]);

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
