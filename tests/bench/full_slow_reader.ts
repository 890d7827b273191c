/**
 * The slow reader over a whole call: reads a 1,000,000-value `pow` from our server (a process
 * of its own) at one value per millisecond, about 17 minutes, checking every value, and
 * prints the server's idle and peak RSS as JSON. `deno task bench` samples the same reader
 * for a window only; this is the run behind the README's whole-call figure.
 *
 * Run: `deno run -A tests/bench/full_slow_reader.ts` (Deno 2.9 reads `/proc` only with
 * `--allow-all`).
 *
 * @module
 */
import { createClient } from "../../mod.ts";
import type { ServerAnnouncement } from "./common.ts";

const COUNT = 1_000_000;
const PROGRESS_EVERY = 100_000;

function residentKb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = status.match(/VmRSS:\s+(\d+)/);
  if (match === null) throw new Error(`No VmRSS for process ${pid}`);
  return Number(match[1]);
}

function mib(kb: number): number {
  return Math.round(kb / 102.4) / 10;
}

async function readPort(stdout: ReadableStream<Uint8Array>): Promise<number> {
  let text = "";
  for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    const newline = text.indexOf("\n");
    if (newline !== -1) {
      return (JSON.parse(text.slice(0, newline)) as ServerAnnouncement).port;
    }
  }
  throw new Error(`Server ended before announcing its port: ${text}`);
}

const server = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net=127.0.0.1",
    "--allow-env=GRPC_*",
    new URL("./our_server.ts", import.meta.url).pathname,
  ],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
try {
  const port = await readPort(server.stdout);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const idleKb = residentKb(server.pid);
  let peakKb = idleKb;
  const sampler = setInterval(
    () => peakKb = Math.max(peakKb, residentKb(server.pid)),
    250,
  );
  const started = performance.now();
  let read = 0;
  try {
    using client = createClient(`127.0.0.1:${port}`);
    for await (const power of client.pow(1, { count: COUNT })) {
      if (power !== 1n) throw new Error(`Wrong value at ${read}: ${power}`);
      read++;
      // One value per millisecond on average; sleeping every 100 values keeps timers cheap.
      if (read % 100 === 0) {
        const ahead = read - (performance.now() - started);
        if (ahead > 0) {
          await new Promise((resolve) => setTimeout(resolve, ahead));
        }
      }
      if (read % PROGRESS_EVERY === 0) {
        console.error(`${read} values, peak RSS ${mib(peakKb)} MiB`);
      }
    }
  } finally {
    clearInterval(sampler);
  }
  console.log(JSON.stringify({
    values: read,
    seconds: Math.round((performance.now() - started) / 1000),
    idleMiB: mib(idleKb),
    peakMiB: mib(peakKb),
    growthMiB: mib(peakKb - idleKb),
  }));
} finally {
  await server.stdin.close();
  await server.status;
}
