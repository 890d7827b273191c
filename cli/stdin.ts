/**
 * Numbers read from stdin as they arrive, so a stream of numbers is sent as it is typed.
 *
 * @module
 */
import { InputError, parseFloat64, parseInt64 } from "./args.ts";

/** A word read from stdin, with the line it was on for error messages. */
interface Word {
  text: string;
  line: number;
}

/**
 * Yields each whitespace-separated word of `input` as soon as the whitespace after it
 * arrives, so a number typed at a terminal is sent when its line is entered.
 */
async function* readWords(
  input: ReadableStream<Uint8Array>,
): AsyncGenerator<Word> {
  let word = "";
  let line = 1;
  let wordLine = 1;
  for await (const chunk of input.pipeThrough(new TextDecoderStream())) {
    let start = -1;
    for (let index = 0; index < chunk.length; index++) {
      const character = chunk[index]!;
      const isSpace = character === " " || character === "\n" ||
        character === "\t" || character === "\r";
      if (!isSpace) {
        if (start === -1) {
          start = index;
          if (word === "") wordLine = line;
        }
        continue;
      }
      if (start !== -1) {
        word += chunk.slice(start, index);
        start = -1;
      }
      if (word !== "") {
        yield { text: word, line: wordLine };
        word = "";
      }
      if (character === "\n") line += 1;
    }
    if (start !== -1) word += chunk.slice(start);
  }
  if (word !== "") yield { text: word, line: wordLine };
}

/** The int64s of stdin for `sum`; a word that is not one throws an `InputError`. */
export async function* readInt64s(
  input: ReadableStream<Uint8Array>,
): AsyncGenerator<bigint> {
  for await (const { text, line } of readWords(input)) {
    yield parseInt64(text, `Number on line ${line} of stdin`);
  }
}

/**
 * The numbers of stdin for `sqrt`. A word that is not a number ends the stream cleanly
 * rather than cancelling the call, so the answers to the numbers before it still arrive;
 * `badInput()` then tells what the word was.
 */
export function readFloat64s(input: ReadableStream<Uint8Array>): {
  numbers: AsyncGenerator<number>;
  badInput(): InputError | undefined;
} {
  let badInput: InputError | undefined;
  async function* numbers(): AsyncGenerator<number> {
    for await (const { text, line } of readWords(input)) {
      let number: number;
      try {
        number = parseFloat64(text, `Number on line ${line} of stdin`);
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        badInput = error;
        return;
      }
      yield number;
    }
  }
  return { numbers: numbers(), badInput: () => badInput };
}

/** Tells a user at a terminal that the command waits for numbers. */
export function noteReadingStdin(): void {
  if (Deno.stdin.isTerminal()) {
    console.error(
      "Reading numbers from stdin, one a line; end with Ctrl-D (Ctrl-Z on Windows)",
    );
  }
}
