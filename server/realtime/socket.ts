/**
 * socket.io on the console's HTTP server: signed-in browsers connect with their session cookie,
 * and the fleet's changes go out to rooms (dashboard, host:<id>, vm:<id>). A wall dashboard
 * opened with a read-only link connects with its key instead and gets the wall's feed only.
 */
import type { Server as HttpServer } from "node:http";
import { Server } from "socket.io";
import type { Db } from "../console/db/client.js";
import { dashboardLinkOf } from "../console/auth/dashboard-links.js";
import { readCookie, userOfSession } from "../console/auth/sessions.js";
import type { FleetNotifier } from "../fleet/views.js";
import { rooms, type ClientToServerEvents, type ServerToClientEvents, type SocketData } from "./types.js";
import { WallFeed } from "./wall.js";

export type RealtimeServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

const walls = new WeakMap<RealtimeServer, WallFeed>();

export function attachRealtime(http: HttpServer, db: Db): RealtimeServer {
  const io: RealtimeServer = new Server(http, { path: "/socket.io", serveClient: false });
  const wall = new WallFeed(io, db);
  walls.set(io, wall);
  wall.start();
  http.once("close", () => wall.stop());
  io.use((socket, next) => {
    const key = (socket.handshake.auth as { dashboardKey?: unknown }).dashboardKey;
    if (typeof key === "string") {
      dashboardLinkOf(db, key)
        .then((id) => {
          if (!id) return next(new Error("this dashboard link is not valid or was revoked"));
          socket.data.dashboardLinkId = id;
          next();
        })
        .catch(next);
      return;
    }
    userOfSession(db, readCookie(socket.handshake.headers.cookie))
      .then((s) => (s ? next() : next(new Error("sign in first"))))
      .catch(next);
  });
  const sendWall = (socket: { join(room: string): unknown; emit: RealtimeServer["emit"] }) => {
    void socket.join(rooms.wall);
    void wall.snapshot().then((s) => socket.emit("wall:snapshot", s), (err) => console.error("console: wall snapshot", err));
  };
  io.on("connection", (socket) => {
    // A dashboard link sees the wall and nothing else.
    if (socket.data.dashboardLinkId) return sendWall(socket);
    void socket.join(rooms.dashboard);
    socket.on("host:watch", (id) => typeof id === "string" && void socket.join(rooms.host(id)));
    socket.on("host:unwatch", (id) => typeof id === "string" && void socket.leave(rooms.host(id)));
    socket.on("vm:watch", (id) => typeof id === "string" && void socket.join(rooms.vm(id)));
    socket.on("vm:unwatch", (id) => typeof id === "string" && void socket.leave(rooms.vm(id)));
    socket.on("fleet:watch", () => void socket.join(rooms.allVms));
    socket.on("fleet:unwatch", () => void socket.leave(rooms.allVms));
    socket.on("wall:watch", () => sendWall(socket));
  });
  return io;
}

/** The fleet's notifications as socket.io broadcasts. */
export function realtimeNotifier(io: () => RealtimeServer | undefined): FleetNotifier {
  const wall = () => {
    const server = io();
    if (server) walls.get(server)?.changed();
  };
  return {
    hostChanged: (host) => (io()?.to(rooms.dashboard).emit("host:update", host), wall()),
    hostRemoved: (hostId) => (io()?.to(rooms.dashboard).emit("host:remove", hostId), wall()),
    vmChanged: (vm) => (io()?.to([rooms.host(vm.hostId), rooms.vm(vm.vmId), rooms.allVms]).emit("vm:update", vm), wall()),
    vmRemoved: (hostId, vmId) => (io()?.to([rooms.host(hostId), rooms.vm(vmId), rooms.allVms]).emit("vm:remove", { hostId, vmId }), wall()),
    vmMetrics: (hostId, changes) => io()?.to([rooms.host(hostId), rooms.allVms]).emit("vm:metrics", { hostId, changes }),
    events: (hostId, events) => io()?.to(rooms.host(hostId)).emit("events:new", events),
  };
}

/** A console job's progress, to every signed-in browser. */
export function jobNotifier(io: () => RealtimeServer | undefined) {
  return (job: import("../jobs/types.js").JobView) => void io()?.to(rooms.dashboard).emit("job:update", job);
}
