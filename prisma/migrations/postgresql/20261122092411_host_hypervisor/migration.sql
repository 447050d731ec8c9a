-- AlterTable
ALTER TABLE "Host" ADD COLUMN     "accelerator" TEXT,
ADD COLUMN     "hypervisor" TEXT;
