/**
 * The article's server-streaming client (`server_stream_client.go`): sends 2 to
 * `stream.ServerStream/Pow` on 127.0.0.1:8082 and prints each power as it arrives, then
 * `server closed`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* examples/server_stream_client.ts [--address 127.0.0.1:8082]
 * ```
 *
 * Unlike the Go client, it exits 0 when the stream ends cleanly, and 1 with one
 * `error: CODE_NAME: details` line when it does not (for example, when no server listens).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { pow } from "../mod.ts";

const USAGE = "Usage: server_stream_client.ts [--address HOST:PORT]";

async function main(args: string[]): Promise<number> {
  let address: string;
  try {
    ({ values: { address } } = parseArgs({
      args,
      options: { address: { type: "string", default: "127.0.0.1:8082" } },
    }));
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    console.error(USAGE);
    return 2;
  }
  try {
    for await (const power of pow(2, { address })) {
      console.log(`Recv data:${power}`);
    }
    console.log("server closed");
    return 0;
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
