/**
 * What the figures were measured on: the machine, Deno, grpc-js, the load average, and the
 * commit (with any uncommitted changes), so that a figure can be traced.
 *
 * @module
 */
import { PINNED_GRPC_JS_VERSION } from "../../internals/versions.ts";
import { PROJECT_DIRECTORY } from "./processes.ts";
import { readProcFile } from "./proc.ts";

/** What the figures were measured on. */
export interface Machine {
  cores: number;
  cpu: string;
  memory: string;
  os: string;
  deno: string;
  v8: string;
  typescript: string;
  grpcJs: string;
  /** The 1-minute load average when the run started and when it ended. */
  loadAtStart: string;
  loadAtEnd: string;
  /** The code measured. */
  code: string;
}

/** The commit measured, and the files that differ from it, so figures can be traced. */
export async function describeCode(): Promise<string> {
  async function git(...args: string[]): Promise<string> {
    try {
      const { success, stdout } = await new Deno.Command("git", {
        args: ["-C", new URL(PROJECT_DIRECTORY).pathname, ...args],
        stdout: "piped",
        stderr: "null",
      }).output();
      return success ? new TextDecoder().decode(stdout).trimEnd() : "";
    } catch {
      return "";
    }
  }
  const commit = await git("rev-parse", "--short", "HEAD");
  if (commit === "") return "unknown (not a git checkout)";
  const changed = (await git("status", "--porcelain", "--untracked-files=no"))
    .split("\n")
    .map((line) => line.slice(3))
    .filter((path) => path !== "");
  return changed.length === 0
    ? `commit ${commit}`
    : `commit ${commit} with uncommitted changes to ${changed.join(", ")}`;
}

/** The 1-minute load average, as `/proc/loadavg` says it. */
export async function loadAverage(): Promise<string> {
  return (await readProcFile("loadavg")).split(" ")[0] ?? "unknown";
}

/** The machine, the runtimes and the code, at the start of a run. */
export async function describeMachine(): Promise<Machine> {
  const cpuInfo = await readProcFile("cpuinfo");
  const memInfo = await readProcFile("meminfo");
  const release = (await readProcFile("sys/kernel/osrelease")).trim();
  const totalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(memInfo)?.[1] ?? NaN);
  return {
    cores: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuInfo)?.[1]?.trim() ?? "unknown",
    memory: Number.isNaN(totalKb)
      ? "unknown"
      : `${(totalKb / 1024 / 1024).toFixed(1)} GiB`,
    os: `${Deno.build.os} ${Deno.build.arch}${
      release === "" ? "" : ` (kernel ${release})`
    }`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    grpcJs: PINNED_GRPC_JS_VERSION,
    loadAtStart: await loadAverage(),
    loadAtEnd: "",
    code: await describeCode(),
  };
}
