import { TRPCError } from "@trpc/server";
import { expect } from "vitest";
import { FieldError, fieldsOf } from "../errors.js";
import { ZodError } from "zod";

/** Awaits a call that must fail with `code`; with `field`, the error must name that input field. */
export async function expectTrpcError(call: Promise<unknown>, code: TRPCError["code"], field?: string): Promise<TRPCError> {
  const err = await call.then(
    () => {
      throw new Error(`expected ${code}, but the call succeeded`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TRPCError);
  const e = err as TRPCError;
  expect(e.code, e.message).toBe(code);
  if (field) expect(Object.keys(fieldErrorsOf(e))).toContain(field);
  return e;
}

export function fieldErrorsOf(e: TRPCError): Record<string, string[]> {
  if (e instanceof FieldError) return e.fieldErrors;
  if (e.cause instanceof ZodError) return fieldsOf(e.cause);
  return {};
}
