-- AlterTable
ALTER TABLE "Vm" ADD COLUMN     "testOf" JSONB;
