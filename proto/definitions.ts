/**
 * The wire contract shared by the server and the clients: the three streaming services of the
 * original Go demo, loaded from the `.proto` files beside this module.
 *
 * The `.proto` sources arrive as text imports, so the definitions load the same way from a
 * checkout on disk and from https URLs (JSR) without any file system access.
 *
 * @module
 */
import type * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import serverStreamProto from "./server_stream.proto" with { type: "text" };
import clientStreamProto from "./client_stream.proto" with { type: "text" };
import bidirectionalStreamProto from "./bidirectional_stream.proto" with {
  type: "text",
};
import singleProto from "./single.proto" with { type: "text" };

/** `stream.ServerStreamReq` as the wire codec reads and writes it (int64 as a decimal string). */
export interface PowRequest {
  /** The base, an int64 in decimal. */
  number: string;
  /** How many powers to send; 0 means the demo's 10. */
  count: number;
}

/** `stream.ServerStreamResp`: one power, an int64 in decimal. */
export interface PowReply {
  /** The power, an int64 in decimal. */
  number: string;
}

/** `stream.ClientStreamReq`: one addend, an int64 in decimal. */
export interface SumRequest {
  /** The addend, an int64 in decimal. */
  number: string;
}

/** `stream.ClientStreamResp`: the total, an int64 in decimal. */
export interface SumReply {
  /** The total, an int64 in decimal. */
  sum: string;
}

/** `stream.AllStreamReq`: one number to take the square root of. */
export interface SqrtRequest {
  /** The number. */
  number: number;
}

/** `stream.AllStreamResp`: one square root. */
export interface SqrtReply {
  /** The square root. */
  sqrt: number;
}

/** The three streaming services, ready for `grpc.Server.addService`. */
export interface StreamServiceDefinitions {
  /** `stream.ServerStream`, hosting `Pow`. */
  serverStream: grpc.ServiceDefinition;
  /** `stream.ClientStream`, hosting `Sum`. */
  clientStream: grpc.ServiceDefinition;
  /** `stream.BidirectionalStreamServer`, hosting `Sqrt`. */
  bidirectionalStream: grpc.ServiceDefinition;
  /** `stream.Single`, hosting the unary `Sqrt`. */
  single: grpc.ServiceDefinition;
}

/** One method: its HTTP/2 path and the codecs of both directions. */
export interface StreamMethod<Request, Reply> {
  /** The method's path, e.g. `/stream.ServerStream/Pow`. */
  path: string;
  /** Encodes a request message. */
  serializeRequest(request: Request): Buffer;
  /** Decodes a request message. */
  deserializeRequest(bytes: Buffer): Request;
  /** Encodes a reply message. */
  serializeReply(reply: Reply): Buffer;
  /** Decodes a reply message. */
  deserializeReply(bytes: Buffer): Reply;
}

/** The three methods of the wire contract. */
export interface StreamMethods {
  /** `/stream.ServerStream/Pow`, server streaming. */
  pow: StreamMethod<PowRequest, PowReply>;
  /** `/stream.ClientStream/Sum`, client streaming. */
  sum: StreamMethod<SumRequest, SumReply>;
  /** `/stream.BidirectionalStreamServer/Sqrt`, bidirectional streaming. */
  sqrt: StreamMethod<SqrtRequest, SqrtReply>;
  /** `/stream.Single/Sqrt`, unary. */
  singleSqrt: StreamMethod<SqrtRequest, SqrtReply>;
}

// int64 travels as decimal strings so no value loses precision on its way to a bigint, and
// `defaults` restores the zero-valued fields that proto3 leaves off the wire.
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

function loadServices(): StreamServiceDefinitions {
  const root = new protobuf.Root();
  for (
    const source of [
      serverStreamProto,
      clientStreamProto,
      bidirectionalStreamProto,
      singleProto,
    ]
  ) {
    protobuf.parse(source, root, { keepCase: true });
  }
  const packageDefinition = fromJSON(root.toJSON(), LOADER_OPTIONS);
  function service(name: string): grpc.ServiceDefinition {
    const definition = packageDefinition[name];
    if (definition === undefined || "format" in definition) {
      throw new TypeError(`Service is missing from the wire contract: ${name}`);
    }
    return definition as grpc.ServiceDefinition;
  }
  return {
    serverStream: service("stream.ServerStream"),
    clientStream: service("stream.ClientStream"),
    bidirectionalStream: service("stream.BidirectionalStreamServer"),
    single: service("stream.Single"),
  };
}

function methodOf<Request, Reply>(
  service: grpc.ServiceDefinition,
  name: string,
): StreamMethod<Request, Reply> {
  const definition = service[name] as
    | grpc.MethodDefinition<Request, Reply>
    | undefined;
  if (definition === undefined) {
    throw new TypeError(`Method is missing from the wire contract: ${name}`);
  }
  return {
    path: definition.path,
    serializeRequest: definition.requestSerialize,
    deserializeRequest: definition.requestDeserialize,
    serializeReply: definition.responseSerialize,
    deserializeReply: definition.responseDeserialize,
  };
}

/** The service definitions of the wire contract, for registering handlers on a server. */
export const streamServices: StreamServiceDefinitions = loadServices();

/** The methods of the wire contract, for making calls. */
export const streamMethods: StreamMethods = {
  pow: methodOf(streamServices.serverStream, "Pow"),
  sum: methodOf(streamServices.clientStream, "Sum"),
  sqrt: methodOf(streamServices.bidirectionalStream, "Sqrt"),
  singleSqrt: methodOf(streamServices.single, "Sqrt"),
};
