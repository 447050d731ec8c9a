/**
 * socket.io on the console's HTTP server: only signed-in browsers connect (session cookie),
 * and the fleet's changes go out to rooms (dashboard, host:<id>, vm:<id>).
 */
import type { Server as HttpServer } from "node:http";
import { Server } from "socket.io";
import type { Db } from "../console/db/client.js";
import { readCookie, userOfSession } from "../console/auth/sessions.js";
import type { FleetNotifier } from "../fleet/views.js";
import { rooms, type ClientToServerEvents, type ServerToClientEvents } from "./types.js";

export type RealtimeServer = Server<ClientToServerEvents, ServerToClientEvents>;

export function attachRealtime(http: HttpServer, db: Db): RealtimeServer {
  const io: RealtimeServer = new Server(http, { path: "/socket.io", serveClient: false });
  io.use((socket, next) => {
    userOfSession(db, readCookie(socket.handshake.headers.cookie))
      .then((s) => (s ? next() : next(new Error("sign in first"))))
      .catch(next);
  });
  io.on("connection", (socket) => {
    void socket.join(rooms.dashboard);
    socket.on("host:watch", (id) => typeof id === "string" && void socket.join(rooms.host(id)));
    socket.on("host:unwatch", (id) => typeof id === "string" && void socket.leave(rooms.host(id)));
    socket.on("vm:watch", (id) => typeof id === "string" && void socket.join(rooms.vm(id)));
    socket.on("vm:unwatch", (id) => typeof id === "string" && void socket.leave(rooms.vm(id)));
    socket.on("fleet:watch", () => void socket.join(rooms.allVms));
    socket.on("fleet:unwatch", () => void socket.leave(rooms.allVms));
  });
  return io;
}

/** The fleet's notifications as socket.io broadcasts. */
export function realtimeNotifier(io: () => RealtimeServer | undefined): FleetNotifier {
  return {
    hostChanged: (host) => io()?.to(rooms.dashboard).emit("host:update", host),
    hostRemoved: (hostId) => io()?.to(rooms.dashboard).emit("host:remove", hostId),
    vmChanged: (vm) => io()?.to([rooms.host(vm.hostId), rooms.vm(vm.vmId), rooms.allVms]).emit("vm:update", vm),
    vmRemoved: (hostId, vmId) => io()?.to([rooms.host(hostId), rooms.vm(vmId), rooms.allVms]).emit("vm:remove", { hostId, vmId }),
    vmMetrics: (hostId, changes) => io()?.to([rooms.host(hostId), rooms.allVms]).emit("vm:metrics", { hostId, changes }),
    events: (hostId, events) => io()?.to(rooms.host(hostId)).emit("events:new", events),
  };
}

/** A console job's progress, to every signed-in browser. */
export function jobNotifier(io: () => RealtimeServer | undefined) {
  return (job: import("../jobs/types.js").JobView) => void io()?.to(rooms.dashboard).emit("job:update", job);
}
