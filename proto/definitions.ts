/**
 * The wire contract shared by the server and the clients: the three streaming services of the
 * original Go demo, loaded from the `.proto` files beside this module.
 *
 * The `.proto` sources arrive as text imports, so the definitions load the same way from a
 * checkout on disk and from https URLs (JSR) without any file system access.
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";
import {
  fromJSON,
  type PackageDefinition,
} from "../internals/npm/proto_loader.ts";
import protobuf from "../internals/npm/protobufjs.ts";
import serverStreamProto from "./server_stream.proto" with { type: "text" };
import clientStreamProto from "./client_stream.proto" with { type: "text" };
import bidirectionalStreamProto from "./bidirectional_stream.proto" with {
  type: "text",
};
import singleProto from "./single.proto" with { type: "text" };
import {
  decodePowReply,
  decodePowRequest,
  decodeSqrtReply,
  decodeSqrtRequest,
  decodeSumReply,
  decodeSumRequest,
  encodePowReply,
  encodePowRequest,
  encodeSqrtReply,
  encodeSqrtRequest,
  encodeSumReply,
  encodeSumRequest,
  type PowReply,
  type PowRequest,
  type SqrtReply,
  type SqrtRequest,
  type SumReply,
  type SumRequest,
} from "./codec.ts";

export type {
  PowReply,
  PowRequest,
  SqrtReply,
  SqrtRequest,
  SumReply,
  SumRequest,
};

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
  deserializeRequest(bytes: Uint8Array): Request;
  /** Encodes a reply message. */
  serializeReply(reply: Reply): Buffer;
  /** Decodes a reply message. */
  deserializeReply(bytes: Uint8Array): Reply;
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

// The loader describes the services (paths, names, descriptors for reflection); the messages
// themselves go through the hand-written codecs of codec.ts, which keep int64 as bigint.
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

function loadPackageDefinition(): PackageDefinition {
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
  return fromJSON(root.toJSON(), LOADER_OPTIONS);
}

/**
 * Everything the `.proto` files define, as `@grpc/proto-loader` describes it (message types,
 * services and file descriptors, as server reflection needs them).
 */
export const streamPackageDefinition: PackageDefinition =
  loadPackageDefinition();

/**
 * Takes the single-method service of `serviceMethod` ("stream.ServerStream/Pow", the method's
 * path without its leading slash) from the package definition and gives its method the
 * hand-written codecs.
 */
function serviceWithCodecs<Request, Reply>(
  serviceMethod: string,
  codecs: Omit<StreamMethod<Request, Reply>, "path">,
): grpc.ServiceDefinition {
  const [name = "", method = ""] = serviceMethod.split("/");
  const service = streamPackageDefinition[name] as
    | Record<string, unknown>
    | undefined;
  const definition = service?.[method] as
    | grpc.MethodDefinition<unknown, unknown>
    | undefined;
  if (definition === undefined || typeof definition.path !== "string") {
    throw new TypeError(
      `Method is missing from the wire contract: ${name}.${method}`,
    );
  }
  return {
    [method]: {
      ...definition,
      requestSerialize: codecs.serializeRequest,
      requestDeserialize: codecs.deserializeRequest,
      responseSerialize: codecs.serializeReply,
      responseDeserialize: codecs.deserializeReply,
    },
  };
}

/** The service definitions of the wire contract, for registering handlers on a server. */
export const streamServices: StreamServiceDefinitions = {
  serverStream: serviceWithCodecs<PowRequest, PowReply>(
    "stream.ServerStream/Pow",
    {
      serializeRequest: encodePowRequest,
      deserializeRequest: decodePowRequest,
      serializeReply: encodePowReply,
      deserializeReply: decodePowReply,
    },
  ),
  clientStream: serviceWithCodecs<SumRequest, SumReply>(
    "stream.ClientStream/Sum",
    {
      serializeRequest: encodeSumRequest,
      deserializeRequest: decodeSumRequest,
      serializeReply: encodeSumReply,
      deserializeReply: decodeSumReply,
    },
  ),
  bidirectionalStream: serviceWithCodecs<SqrtRequest, SqrtReply>(
    "stream.BidirectionalStreamServer/Sqrt",
    {
      serializeRequest: encodeSqrtRequest,
      deserializeRequest: decodeSqrtRequest,
      serializeReply: encodeSqrtReply,
      deserializeReply: decodeSqrtReply,
    },
  ),
  single: serviceWithCodecs<SqrtRequest, SqrtReply>("stream.Single/Sqrt", {
    serializeRequest: encodeSqrtRequest,
    deserializeRequest: decodeSqrtRequest,
    serializeReply: encodeSqrtReply,
    deserializeReply: decodeSqrtReply,
  }),
};

function methodOf<Request, Reply>(
  service: grpc.ServiceDefinition,
): StreamMethod<Request, Reply> {
  const [definition] = Object.values(service) as grpc.MethodDefinition<
    Request,
    Reply
  >[];
  return {
    path: definition!.path,
    serializeRequest: definition!.requestSerialize,
    deserializeRequest: definition!.requestDeserialize,
    serializeReply: definition!.responseSerialize,
    deserializeReply: definition!.responseDeserialize,
  };
}

/** The methods of the wire contract, for making calls. */
export const streamMethods: StreamMethods = {
  pow: methodOf(streamServices.serverStream),
  sum: methodOf(streamServices.clientStream),
  sqrt: methodOf(streamServices.bidirectionalStream),
  singleSqrt: methodOf(streamServices.single),
};
