/**
 * The answers of the short-call bench's bare servers (`short_floor_server.ts`,
 * `raw_h2_floor_server.ts`): what the load clients' `Pow`, `Sum` and `Sqrt` requests get back,
 * read and written the shortest way. It reads only what the benchmark's load clients send (a
 * `Pow` base and count, non-negative `Sum` numbers whose total stays below 2^53, `Sqrt`
 * numbers) and checks nothing else.
 *
 * @module
 */

/** Reads a varint at `offset`; the value and where the next field starts. */
function readVarint(bytes: Uint8Array, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  let position = offset;
  for (;;) {
    const byte = bytes[position++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, position];
    scale *= 128;
  }
}

/** The gRPC messages of a request body, each as its own bytes. */
export function messagesOf(body: Uint8Array): Uint8Array[] {
  const messages: Uint8Array[] = [];
  let offset = 0;
  while (body.length - offset >= 5) {
    const size = ((body[offset + 1]! << 24) >>> 0) + (body[offset + 2]! << 16) +
      (body[offset + 3]! << 8) + body[offset + 4]!;
    messages.push(body.subarray(offset + 5, offset + 5 + size));
    offset += 5 + size;
  }
  return messages;
}

/** Field `field` of `message` as a varint, 0 when absent. */
function varintField(message: Uint8Array, field: number): number {
  let offset = 0;
  while (offset < message.length) {
    const [tag, next] = readVarint(message, offset);
    if (tag === (field << 3)) return readVarint(message, next)[0];
    offset = (tag & 7) === 1 ? next + 8 : readVarint(message, next)[1];
  }
  return 0;
}

/** Field 1 of `message` as a double, 0 when absent. */
function doubleField(message: Uint8Array): number {
  if (message.length < 9) return 0;
  return new DataView(message.buffer, message.byteOffset + 1, 8).getFloat64(
    0,
    true,
  );
}

function varintMessage(value: number): Uint8Array {
  const varint: number[] = [];
  let rest = value;
  do {
    const low = rest % 128;
    rest = Math.floor(rest / 128);
    varint.push(rest > 0 ? low | 0x80 : low);
  } while (rest > 0);
  return Uint8Array.from(value === 0 ? [] : [0x08, ...varint]);
}

function doubleMessage(value: number): Uint8Array {
  if (value === 0) return new Uint8Array(0);
  const message = new Uint8Array(9);
  message[0] = 0x09;
  new DataView(message.buffer).setFloat64(1, value, true);
  return message;
}

/**
 * The reply messages of one call.
 *
 * @param path The call's `:path`; any other than `Pow`'s and `Sum`'s is taken for `Sqrt`.
 * @param requests Its request messages.
 * @returns Its reply messages, unframed.
 */
export function answerShortCall(
  path: string,
  requests: readonly Uint8Array[],
): Uint8Array[] {
  switch (path) {
    case "/stream.ServerStream/Pow": {
      const request = requests[0] ?? new Uint8Array(0);
      const base = varintField(request, 1);
      const count = varintField(request, 2) || 10;
      const replies: Uint8Array[] = [];
      let power = 1;
      for (let i = 0; i < count; i++) {
        replies.push(varintMessage(power));
        power *= base;
      }
      return replies;
    }
    case "/stream.ClientStream/Sum": {
      let total = 0;
      for (const request of requests) total += varintField(request, 1);
      return [varintMessage(total)];
    }
    default:
      return requests.map((request) =>
        doubleMessage(Math.sqrt(doubleField(request)))
      );
  }
}
