/**
 * The lines the article's programs print, as its "run" sections show them: what the examples,
 * the demo and the command line must reproduce.
 *
 * @module
 */

/** The powers of 2 the article's server-streaming demo receives, 2^0 … 2^9, in decimal. */
export const POWERS_OF_TWO: readonly string[] = [
  "1",
  "2",
  "4",
  "8",
  "16",
  "32",
  "64",
  "128",
  "256",
  "512",
];

/** `Recv data:N` for the powers of 2 the server-streaming client receives. */
export const POWER_LINES: readonly string[] = POWERS_OF_TWO.map((power) =>
  `Recv data:${power}`
);

/** `Recv Data:X` for the square roots of 0 … 9 the bidirectional client receives. */
export const ROOT_LINES: readonly string[] = [
  "Recv Data:0",
  "Recv Data:1",
  "Recv Data:1.4142135623730951",
  "Recv Data:1.7320508075688772",
  "Recv Data:2",
  "Recv Data:2.23606797749979",
  "Recv Data:2.449489742783178",
  "Recv Data:2.6457513110645907",
  "Recv Data:2.8284271247461903",
  "Recv Data:3",
];
