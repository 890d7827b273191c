/**
 * The calling commands' answers on stdout, one a line, written as they arrive.
 *
 * `console.log` drops a write whose reader has gone (`| head -3`), so a command printing a
 * stream through it goes on calling to the end. {@linkcode printLine} writes itself and lets
 * the `BrokenPipe` through: the loop that prints a stream ends, which cancels its call.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Writes `text` and a newline to stdout, waiting for the reader as `console.log` does.
 *
 * @param text The line, without its newline.
 * @throws {Deno.errors.BrokenPipe} If the reader of stdout has gone.
 */
export function printLine(text: string): void {
  const bytes = encoder.encode(text + "\n");
  let offset = 0;
  while (offset < bytes.length) {
    offset += Deno.stdout.writeSync(bytes.subarray(offset));
  }
}
