// This file is type-checked before it runs: a `Status` that were not a union of literal codes
// (or a `GrpcError.code` typed `number`) fails the exhaustive switch below, and a union that
// took any number leaves the `@ts-expect-error` unused, an error too.
import { strictEqual } from "node:assert";
import type * as grpc from "@grpc/grpc-js";
import { GrpcError, startServer, Status, sum } from "../../mod.ts";
import {
  failure,
  grpcJsSumServer,
  listenOnFreePort,
} from "../_util/test_utils.ts";
import { test } from "../_util/transports.ts";

/** What a caller does about each code; no `default` arm but the one that proves none is left. */
function advice(code: Status): string {
  switch (code) {
    case Status.OK:
      return "done";
    case Status.CANCELLED:
    case Status.DEADLINE_EXCEEDED:
    case Status.ABORTED:
      return "try again later";
    case Status.UNAVAILABLE:
    case Status.RESOURCE_EXHAUSTED:
      return "retry";
    case Status.INVALID_ARGUMENT:
    case Status.OUT_OF_RANGE:
    case Status.FAILED_PRECONDITION:
    case Status.NOT_FOUND:
    case Status.ALREADY_EXISTS:
      return "fix the request";
    case Status.UNAUTHENTICATED:
    case Status.PERMISSION_DENIED:
      return "check the credentials";
    case Status.UNKNOWN:
    case Status.UNIMPLEMENTED:
    case Status.INTERNAL:
    case Status.DATA_LOSS:
      return "report it";
    default: {
      const unhandled: never = code;
      throw new TypeError(`Unhandled status code: ${unhandled}`);
    }
  }
}

Deno.test("Status is a union of literal codes, checked for exhaustiveness", () => {
  strictEqual(advice(Status.OUT_OF_RANGE), "fix the request");
  const known: Status = 16;
  strictEqual(advice(known), "check the credentials");
  // @ts-expect-error 17 is not a gRPC status code.
  const wrong: Status = 17;
  strictEqual(typeof wrong, "number");
  // @ts-expect-error Nor is a code's name.
  new GrpcError("OUT_OF_RANGE", "Too big");
});

test("GrpcError.code is one of Status's codes, whatever the server sent", async (t) => {
  await t.step("a failure of the module's server", async () => {
    await using server = await startServer({ port: 0 });
    const error = await failure(
      sum([2n ** 62n, 2n ** 62n], {
        address: server.addresses[0]!,
        transport: t.transport,
      }),
    );
    strictEqual(advice(error.code), "fix the request");
    strictEqual(error.code, Status.OUT_OF_RANGE);
  });

  await t.step("a code outside gRPC's list reads as UNKNOWN", async () => {
    await using server = await listenOnFreePort(
      grpcJsSumServer(() => ({
        code: 42 as grpc.status,
        details: "A code of its own",
      })),
    );
    const error = await failure(
      sum([1], { address: server.address, transport: t.transport }),
    );
    strictEqual(error.code, Status.UNKNOWN);
    strictEqual(error.codeName, "UNKNOWN");
    strictEqual(advice(error.code), "report it");
  });
});
