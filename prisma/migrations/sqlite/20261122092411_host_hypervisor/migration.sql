-- AlterTable
ALTER TABLE "Host" ADD COLUMN "accelerator" TEXT;
ALTER TABLE "Host" ADD COLUMN "hypervisor" TEXT;
