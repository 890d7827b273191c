/**
 * A bare `node:http2` server for the tests, to answer what a gRPC server would not.
 *
 * @module
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

/** What the server does with each stream it is sent. */
export type StreamHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => void;

/** A bare `node:http2` server, to answer what a gRPC server would not. */
export async function startHttp2Server(
  handler: StreamHandler,
): Promise<{ address: string } & AsyncDisposable> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => {});
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    handler(stream as http2.ServerHttp2Stream, headers);
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    async [Symbol.asyncDispose](): Promise<void> {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
