/**
 * The article's bidirectional-streaming client (`bidirectional_stream_client.go`): streams
 * 0 … 9 to `stream.BidirectionalStreamServer/Sqrt` on 127.0.0.1:8083, one number a second,
 * prints each square root as it arrives (`Recv Data:1.4142135623730951`), then
 * `Server Closed`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env=GRPC_* examples/bidirectional_stream_client.ts [--address 127.0.0.1:8083] [--interval 1000]
 * ```
 *
 * `--interval` is the pause between two numbers in milliseconds. It exits 0 when the server
 * ends the stream cleanly, and 1 with one `error: CODE_NAME: details` line when it does not.
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { sqrt } from "../mod.ts";

const USAGE =
  "Usage: bidirectional_stream_client.ts [--address HOST:PORT] [--interval MS]";

interface Settings {
  address: string;
  interval: number;
}

function parseSettings(args: string[]): Settings {
  const { values } = parseArgs({
    args,
    options: {
      address: { type: "string", default: "127.0.0.1:8083" },
      interval: { type: "string", default: "1000" },
    },
  });
  const interval = /^\d+$/.test(values.interval)
    ? Number(values.interval)
    : Number.NaN;
  if (!(interval <= 2 ** 31 - 1)) {
    throw new RangeError(
      `Interval must be a whole number of milliseconds: ${values.interval}`,
    );
  }
  return { address: values.address, interval };
}

/** Sends while the answers are read: the Go client's sending goroutine. */
async function* zeroToNine(interval: number): AsyncGenerator<number> {
  for (let number = 0; number < 10; number++) {
    if (number > 0) await delay(interval);
    yield number;
  }
}

async function main(args: string[]): Promise<number> {
  let settings: Settings;
  try {
    settings = parseSettings(args);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    console.error(USAGE);
    return 2;
  }
  try {
    const roots = sqrt(zeroToNine(settings.interval), {
      address: settings.address,
    });
    for await (const root of roots) console.log(`Recv Data:${root}`);
    console.log("Server Closed");
    return 0;
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
