-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Host" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "auth" TEXT NOT NULL DEFAULT 'token',
    "token" TEXT,
    "status" TEXT NOT NULL DEFAULT 'connecting',
    "statusReason" TEXT,
    "agentVersion" TEXT,
    "lastEventId" INTEGER NOT NULL DEFAULT 0,
    "lastSeenAt" DATETIME,
    "addedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO "new_Host" ("addedAt", "address", "agentVersion", "id", "lastEventId", "lastSeenAt", "name", "status", "statusReason", "token") SELECT "addedAt", "address", "agentVersion", "id", "lastEventId", "lastSeenAt", "name", "status", "statusReason", "token" FROM "Host";
DROP TABLE "Host";
ALTER TABLE "new_Host" RENAME TO "Host";
CREATE UNIQUE INDEX "Host_name_key" ON "Host"("name");
CREATE UNIQUE INDEX "Host_address_key" ON "Host"("address");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
