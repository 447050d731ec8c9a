"use client";

import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";

export interface ConfirmRequest {
  title: string;
  message: string;
  confirmLabel: string;
  onConfirm(): void;
}

export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest; onClose(): void }) {
  return (
    <Dialog
      title={request.title}
      onClose={onClose}
      testId="confirm-dialog"
      className="w-[420px]"
      footer={
        <>
          <Button
            variant="primary"
            data-testid="confirm-yes"
            data-autofocus
            onClick={() => {
              onClose();
              request.onConfirm();
            }}
          >
            {request.confirmLabel}
          </Button>
          <Button data-testid="confirm-no" onClick={onClose}>
            Cancel
          </Button>
        </>
      }
    >
      <div className="flex gap-3">
        <span className="flex h-[32px] w-[32px] shrink-0 items-center justify-center rounded-full bg-[#f0c000] text-[18px] font-bold">!</span>
        <p className="pt-1">{request.message}</p>
      </div>
    </Dialog>
  );
}
