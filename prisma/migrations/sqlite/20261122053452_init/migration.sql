-- CreateTable
CREATE TABLE "User" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "passwordHash" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "Session" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" DATETIME NOT NULL,
    CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Host" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'connecting',
    "statusReason" TEXT,
    "agentVersion" TEXT,
    "lastEventId" INTEGER NOT NULL DEFAULT 0,
    "lastSeenAt" DATETIME,
    "addedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateTable
CREATE TABLE "Vm" (
    "hostId" TEXT NOT NULL,
    "vmId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "cpus" INTEGER NOT NULL,
    "memoryMiB" INTEGER NOT NULL,
    "assignedMemoryMiB" INTEGER NOT NULL,
    "upSince" DATETIME,
    "isReplica" BOOLEAN NOT NULL DEFAULT false,
    "disks" JSONB NOT NULL,
    "workload" JSONB NOT NULL,
    "networkConnected" BOOLEAN NOT NULL DEFAULT true,
    "vmCreatedAt" DATETIME NOT NULL,
    "replicationMode" TEXT,
    "replicationState" TEXT,
    "replicationHealth" TEXT,
    "healthReasons" JSONB,
    "relationship" JSONB,
    "updatedAt" DATETIME NOT NULL,

    PRIMARY KEY ("hostId", "vmId"),
    CONSTRAINT "Vm_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Event" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "hostId" TEXT NOT NULL,
    "agentEventId" INTEGER NOT NULL,
    "ts" DATETIME NOT NULL,
    "severity" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "vmId" TEXT,
    "message" TEXT NOT NULL,
    "data" JSONB,
    CONSTRAINT "Event_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "AuditEntry" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "userId" TEXT,
    "userName" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "target" TEXT,
    "input" JSONB,
    "result" TEXT NOT NULL,
    "error" TEXT
);

-- CreateIndex
CREATE UNIQUE INDEX "User_name_key" ON "User"("name");

-- CreateIndex
CREATE INDEX "Session_userId_idx" ON "Session"("userId");

-- CreateIndex
CREATE UNIQUE INDEX "Host_name_key" ON "Host"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Host_address_key" ON "Host"("address");

-- CreateIndex
CREATE INDEX "Event_hostId_ts_idx" ON "Event"("hostId", "ts");

-- CreateIndex
CREATE UNIQUE INDEX "Event_hostId_agentEventId_key" ON "Event"("hostId", "agentEventId");

-- CreateIndex
CREATE INDEX "AuditEntry_at_idx" ON "AuditEntry"("at");
