/**
 * Where a server's CPU goes under grpc-go's short-call load: starts `tests/bench/our_server.ts`
 * with Deno's inspector, samples its CPU through the inspector's WebSocket (the Chrome DevTools
 * protocol's `Profiler` domain) while grpc-go's load client runs, and prints the functions that
 * took the most samples themselves, and the most with what they called. The whole profile is
 * written as a `.cpuprofile` file that Chrome DevTools opens.
 *
 * Run: `deno run --allow-all tests/bench/profile.ts [--shape pow|sum|sqrt] [--seconds 3]
 * [--connections 1] [--inflight 100] [--messages 2] [--top 40] [--out server.cpuprofile]
 * [--server our_server.ts]` (another server program of `tests/bench/` in place of ours).
 * With `--heap` it samples allocations instead (`HeapProfiler.startSampling`) and prints the
 * functions that allocated the most bytes: where the garbage collector's work comes from.
 * after building grpc-go's load client (`deno task bench --only limit` builds it, or see
 * `limit_servers.ts`), whose path it takes from `--load` (default `/tmp/gob/load`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { shortLoadArgs } from "./limit_servers.ts";

interface ProfileNode {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
  };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shape: { type: "string", default: "pow" },
    seconds: { type: "string", default: "3" },
    connections: { type: "string", default: "1" },
    inflight: { type: "string", default: "100" },
    messages: { type: "string", default: "2" },
    top: { type: "string", default: "40" },
    out: { type: "string", default: "server.cpuprofile" },
    load: { type: "string", default: "/tmp/gob/load" },
    "inspect-port": { type: "string", default: "9229" },
    server: { type: "string", default: "our_server.ts" },
    heap: { type: "boolean", default: false },
  },
});

const serverPath = fileURLToPath(
  new URL(`./${values.server}`, import.meta.url),
);
const inspectPort = Number(values["inspect-port"]);
const server = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    `--inspect=127.0.0.1:${inspectPort}`,
    "--allow-net=127.0.0.1",
    "--allow-env=GRPC_*",
    serverPath,
  ],
  stdin: "piped",
  stdout: "piped",
  stderr: "null",
}).spawn();
const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
let announced = "";
while (!announced.includes("\n")) {
  const { value, done } = await lines.read();
  if (done) throw new Error("The server ended before it announced its port");
  announced += value;
}
const port = JSON.parse(announced.split("\n")[0]!).port as number;

const targets = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`))
  .json() as { webSocketDebuggerUrl: string }[];
const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
await new Promise((resolve) => socket.addEventListener("open", resolve));
let nextId = 1;
const waiting = new Map<number, (result: unknown) => void>();
socket.addEventListener("message", (event) => {
  const message = JSON.parse(event.data as string);
  waiting.get(message.id)?.(message.result);
  waiting.delete(message.id);
});
function send(method: string, params: object = {}): Promise<unknown> {
  const id = nextId++;
  socket.send(JSON.stringify({ id, method, params }));
  return new Promise((resolve) => waiting.set(id, resolve));
}

function load(seconds: string): Promise<Deno.CommandOutput> {
  return new Deno.Command(values.load, {
    args: shortLoadArgs({
      shape: values.shape,
      address: `127.0.0.1:${port}`,
      inflight: values.inflight,
      connections: values.connections,
      seconds,
      messages: values.messages,
    }),
    stdout: "piped",
    stderr: "piped",
  }).output();
}

interface HeapNode {
  callFrame: ProfileNode["callFrame"];
  selfSize: number;
  children: HeapNode[];
}

// A warm-up run first, so that the profile shows optimized code, not the compiler.
await load("1");
let profile: Profile | undefined;
let heap: HeapNode | undefined;
let measured: Deno.CommandOutput;
if (values.heap) {
  await send("HeapProfiler.enable");
  // Every sample counts, also of what the collector has freed by the end: the garbage.
  await send("HeapProfiler.startSampling", {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  measured = await load(values.seconds);
  ({ profile: { head: heap } } = await send("HeapProfiler.stopSampling") as {
    profile: { head: HeapNode };
  });
} else {
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  measured = await load(values.seconds);
  ({ profile } = await send("Profiler.stop") as { profile: Profile });
}
console.log(new TextDecoder().decode(measured.stdout).trim());
socket.close();
server.stdin.close();
await server.status;
await Deno.writeTextFile(values.out, JSON.stringify(profile ?? heap));
const top = Number(values.top);

if (heap !== undefined) {
  const calls = JSON.parse(new TextDecoder().decode(measured.stdout)).calls;
  const bytes = new Map<string, number>();
  let all = 0;
  const visit = (node: HeapNode): void => {
    const name = nameOf(node as unknown as ProfileNode);
    bytes.set(name, (bytes.get(name) ?? 0) + node.selfSize);
    all += node.selfSize;
    for (const child of node.children) visit(child);
  };
  visit(heap);
  console.log(
    `\nAllocated (sampled): ${(all / calls).toFixed(0)} bytes per call`,
  );
  for (
    const [name, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, top)
  ) {
    console.log(
      `${(size / calls).toFixed(0).padStart(6)} B/call  ${name}`,
    );
  }
  Deno.exit(0);
}
const byId = new Map(profile!.nodes.map((node) => [node.id, node]));
const parentOf = new Map<number, number>();
for (const node of profile!.nodes) {
  for (const child of node.children ?? []) parentOf.set(child, node.id);
}
function nameOf(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(node_modules|ext|main)\//, "$1/");
  return `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`;
}
const self = new Map<string, number>();
const total = new Map<string, number>();
for (const id of profile!.samples) {
  const node = byId.get(id)!;
  const name = nameOf(node);
  self.set(name, (self.get(name) ?? 0) + 1);
  const seen = new Set<string>();
  for (
    let at: number | undefined = id;
    at !== undefined;
    at = parentOf.get(at)
  ) {
    const ancestor = nameOf(byId.get(at)!);
    if (seen.has(ancestor)) continue;
    seen.add(ancestor);
    total.set(ancestor, (total.get(ancestor) ?? 0) + 1);
  }
}
const samples = profile!.samples.length;
function print(title: string, counts: Map<string, number>): void {
  console.log(`\n${title} (${samples} samples)`);
  for (
    const [name, count] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)
  ) {
    console.log(`${(100 * count / samples).toFixed(1).padStart(6)}%  ${name}`);
  }
}
print("Self", self);
print("With callees", total);
console.log(`\nProfile written to ${values.out}`);
