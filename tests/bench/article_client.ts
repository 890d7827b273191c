/**
 * The client of the "what streaming saves" benchmark: answers `--count` square roots one way
 * and prints the cost per item as one JSON line.
 *
 * - `connection-per-call`: a new connection (a new `Channel`) for every unary
 *   `stream.Single/Sqrt` call, closed after it.
 * - `shared-unary`: unary calls one after another on one shared connection.
 * - `stream-interactive`: one bidirectional `Sqrt` stream; each number is sent once the answer
 *   to the one before it has arrived, like the article's interactive client.
 * - `stream-pipelined`: one bidirectional stream; numbers are written as fast as flow control
 *   allows while the answers are read.
 *
 * It drives the module's own transport (`clients/channel.ts`) directly, so every mode pays the
 * same client costs and the difference between them is the calls and connections alone.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-env=GRPC_* tests/bench/article_client.ts
 * shared-unary 127.0.0.1:PORT --count 2000`
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { Channel } from "../../clients/channel.ts";
import { DEFAULT_MAX_RECEIVE_MESSAGE_BYTES } from "../../proto/envelope.ts";
import type { CallStatus, TransportCall } from "../../clients/transport.ts";
import { streamMethods } from "../../proto/definitions.ts";
import {
  type ClientResult,
  describeError,
  positiveInteger,
  reportResult,
  resultOf,
} from "./common.ts";

/** The ways of answering many numbers that the benchmark compares. */
type Mode =
  | "connection-per-call"
  | "shared-unary"
  | "stream-interactive"
  | "stream-pipelined";

const CHANNEL_OPTIONS = {
  maxReceiveMessageBytes: DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
};

function openChannel(address: string): Channel {
  return new Channel(address, CHANNEL_OPTIONS);
}

function failure(status: CallStatus): Error {
  return new Error(`Call ended with status ${status.code}: ${status.details}`);
}

function checkAnswer(index: number, root: number): void {
  if (root !== Math.sqrt(index)) {
    throw new Error(`Answer ${index} is ${root}, not ${Math.sqrt(index)}`);
  }
}

/** One unary `stream.Single/Sqrt` call. */
function unarySqrt(channel: Channel, number: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let reply: Buffer | undefined;
    const call = channel.startCall(streamMethods.singleSqrt.path, {
      listener: {
        onMessage(message) {
          reply = message;
        },
        onStatus(status) {
          if (status.code !== 0) reject(failure(status));
          else if (reply === undefined) reject(new Error("No reply"));
          else resolve(streamMethods.singleSqrt.deserializeReply(reply).sqrt);
        },
      },
    });
    call.write(streamMethods.singleSqrt.serializeRequest({ number }));
    call.end();
  });
}

async function connectionPerCall(
  address: string,
  count: number,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const channel = openChannel(address);
    try {
      checkAnswer(i, await unarySqrt(channel, i));
    } finally {
      channel.close();
    }
  }
}

async function sharedUnary(address: string, count: number): Promise<void> {
  const channel = openChannel(address);
  try {
    for (let i = 0; i < count; i++) {
      checkAnswer(i, await unarySqrt(channel, i));
    }
  } finally {
    channel.close();
  }
}

/**
 * One bidirectional `Sqrt` call that hands each answer to `onAnswer` and resolves when the
 * call ends well.
 */
function openStream(
  channel: Channel,
  onAnswer: (root: number) => void,
): { call: TransportCall; done: Promise<void> } {
  let call: TransportCall | undefined;
  const done = new Promise<void>((resolve, reject) => {
    call = channel.startCall(streamMethods.sqrt.path, {
      listener: {
        onMessage(message) {
          try {
            onAnswer(streamMethods.sqrt.deserializeReply(message).sqrt);
          } catch (error) {
            call?.cancel();
            reject(error);
          }
        },
        onStatus(status) {
          if (status.code === 0) resolve();
          else reject(failure(status));
        },
      },
    });
  });
  return { call: call!, done };
}

async function streamInteractive(
  address: string,
  count: number,
): Promise<void> {
  const channel = openChannel(address);
  try {
    let answered = 0;
    let wake: (() => void) | undefined;
    const { call, done } = openStream(channel, (root) => {
      checkAnswer(answered++, root);
      wake?.();
    });
    done.catch(() => wake?.());
    for (let i = 0; i < count && !call.finished; i++) {
      const answer = new Promise<void>((resolve) => {
        wake = resolve;
      });
      call.write(streamMethods.sqrt.serializeRequest({ number: i }));
      await answer;
    }
    call.end();
    await done;
    if (answered !== count) {
      throw new Error(`Got ${answered} answers, not ${count}`);
    }
  } finally {
    channel.close();
  }
}

async function streamPipelined(address: string, count: number): Promise<void> {
  const channel = openChannel(address);
  try {
    let answered = 0;
    const { call, done } = openStream(channel, (root) => {
      checkAnswer(answered++, root);
    });
    for (let i = 0; i < count && !call.finished; i++) {
      const message = streamMethods.sqrt.serializeRequest({ number: i });
      if (!call.write(message)) await call.drained();
    }
    call.end();
    await done;
    if (answered !== count) {
      throw new Error(`Got ${answered} answers, not ${count}`);
    }
  } finally {
    channel.close();
  }
}

const MODES: Record<Mode, (address: string, count: number) => Promise<void>> = {
  "connection-per-call": connectionPerCall,
  "shared-unary": sharedUnary,
  "stream-interactive": streamInteractive,
  "stream-pipelined": streamPipelined,
};

function isMode(value: string | undefined): value is Mode {
  return value !== undefined && Object.hasOwn(MODES, value);
}

async function main(): Promise<ClientResult> {
  const { positionals, values } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { count: { type: "string" } },
  });
  const [mode, address] = positionals;
  if (!isMode(mode) || address === undefined) {
    throw new TypeError(
      `Usage: article_client.ts ${
        Object.keys(MODES).join("|")
      } HOST:PORT --count N`,
    );
  }
  const count = positiveInteger(values.count, "Count");
  const start = performance.now();
  let error: string | undefined;
  try {
    await MODES[mode](address, count);
  } catch (caught) {
    error = describeError(caught);
  }
  const elapsed = performance.now() - start;
  return resultOf({
    expected: count,
    completed: error === undefined ? count : 0,
    milliseconds: elapsed,
  }, { error });
}

reportResult(await main());
