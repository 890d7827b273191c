import { strictEqual, throws } from "node:assert";
import * as grpc from "@grpc/grpc-js";
import {
  createClient,
  type GrpcJsCredentials,
  startServer,
} from "../../mod.ts";

/**
 * The members of the public credentials type that grpc-js keeps private (its `_`-named
 * methods): none, so a caller's own type never has to name them.
 */
type PrivateMembers = Extract<keyof GrpcJsCredentials, `_${string}`>;

Deno.test("createClient() takes grpc-js credentials through a type of public members only", async (t) => {
  await t.step("the type names no private member of grpc-js", () => {
    // Fails to type-check while the public type requires one (it required `_isSecure()`).
    const noPrivateMembers: [PrivateMembers] extends [never] ? true : false =
      true;
    strictEqual(noPrivateMembers, true);
  });

  await t.step("grpc-js's own credentials still carry calls", async () => {
    await using server = await startServer({ port: 0 });
    const credentials: GrpcJsCredentials = grpc.credentials.createInsecure();
    using client = createClient(server.addresses[0]!, {
      transport: "grpc-js",
      credentials,
    });
    strictEqual(await client.sum([1, 2, 3]), 6n);
  });

  await t.step("look-alikes that are not grpc-js's are a TypeError", () => {
    const lookAlike: GrpcJsCredentials = {
      compose: () => lookAlike,
    };
    throws(
      () =>
        createClient("127.0.0.1:1", {
          transport: "grpc-js",
          credentials: lookAlike,
        }),
      {
        name: "TypeError",
        message: "Credentials must be grpc-js ChannelCredentials",
      },
    );
  });
});
