/**
 * What `/proc` says about a process's memory and about the machine, read through `cat`
 * because Deno asks for `--allow-all` to read `/proc` itself, and a sampler that watches a
 * process's memory while it works.
 *
 * @module
 */

/** A process's memory as `/proc/<pid>/status` reports it, in kB. */
export interface Memory {
  rssKb: number;
  peakKb: number;
}

/** A process's memory, or `undefined` once it is gone. */
export async function readMemory(pid: number): Promise<Memory | undefined> {
  try {
    const { success, stdout } = await new Deno.Command("cat", {
      args: [`/proc/${pid}/status`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!success) return undefined;
    const status = new TextDecoder().decode(stdout);
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    const peak = /^VmHWM:\s+(\d+) kB/m.exec(status);
    if (rss === null || peak === null) return undefined;
    return { rssKb: Number(rss[1]), peakKb: Number(peak[1]) };
  } catch {
    return undefined;
  }
}

/** A file under `/proc`, or nothing when it cannot be read. */
export async function readProcFile(name: string): Promise<string> {
  try {
    const { stdout } = await new Deno.Command("cat", {
      args: [`/proc/${name}`],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout);
  } catch {
    return "";
  }
}

/** Samples a process's memory at a fixed interval. */
export class MemorySampler {
  readonly samples: { seconds: number; memory: Memory }[] = [];
  readonly #pid: number;
  readonly #start = performance.now();
  #running = true;
  readonly #loop: Promise<void>;

  constructor(pid: number, intervalMs: number) {
    this.#pid = pid;
    this.#loop = this.#run(intervalMs);
  }

  async #run(intervalMs: number): Promise<void> {
    while (this.#running) {
      await this.sample();
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  /** Takes one sample now. */
  async sample(): Promise<void> {
    const memory = await readMemory(this.#pid);
    if (memory !== undefined) {
      this.samples.push({
        seconds: (performance.now() - this.#start) / 1000,
        memory,
      });
    }
  }

  /** The highest peak seen (`VmHWM` never falls, so the last sample is the highest). */
  get peakKb(): number | undefined {
    return this.samples.length === 0
      ? undefined
      : Math.max(...this.samples.map((sample) => sample.memory.peakKb));
  }

  get maxRssKb(): number | undefined {
    return this.samples.length === 0
      ? undefined
      : Math.max(...this.samples.map((sample) => sample.memory.rssKb));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}
