/**
 * The wire contract loaded the way the grpc-js examples load it: proto-loader with the
 * examples' options, then `grpc.loadPackageDefinition`, giving the generic client
 * constructors and service definitions a user of plain grpc-js would work with.
 *
 * The `.proto` text comes from the project's `proto/` (the same files the module serves), but
 * none of the module's own loading or codecs is used.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import serverStreamProto from "../../proto/server_stream.proto" with {
  type: "text",
};
import clientStreamProto from "../../proto/client_stream.proto" with {
  type: "text",
};
import bidirectionalStreamProto from "../../proto/bidirectional_stream.proto" with {
  type: "text",
};
import singleProto from "../../proto/single.proto" with { type: "text" };

/** A service of the loaded package: a client constructor that also carries the service. */
export interface ServiceConstructor<Client extends grpc.Client> {
  new (
    address: string,
    credentials: grpc.ChannelCredentials,
    options?: grpc.ClientOptions,
  ): Client;
  /** The service, for `grpc.Server.addService`. */
  service: grpc.ServiceDefinition;
}

/** A `stream.ServerStream` client, as proto-loader's generated types would describe it. */
export interface PowClient extends grpc.Client {
  /** Starts `Pow`. */
  Pow(
    request: { number: string; count: number },
  ): grpc.ClientReadableStream<{ number: string }>;
}

/** A `stream.ClientStream` client. */
export interface SumClient extends grpc.Client {
  /** Starts `Sum`; the callback receives the sum. */
  Sum(
    callback: grpc.requestCallback<{ sum: string }>,
  ): grpc.ClientWritableStream<{ number: string }>;
}

/** A `stream.BidirectionalStreamServer` client. */
export interface SqrtClient extends grpc.Client {
  /** Starts `Sqrt`. */
  Sqrt(): grpc.ClientDuplexStream<{ number: number }, { sqrt: number }>;
}

/** A `stream.Single` client. */
export interface SingleClient extends grpc.Client {
  /** One unary `Sqrt`. */
  Sqrt(
    request: { number: number },
    callback: grpc.requestCallback<{ sqrt: number }>,
  ): grpc.ClientUnaryCall;
}

/** The `stream` package as `grpc.loadPackageDefinition` returns it. */
export interface StreamPackage {
  /** `stream.ServerStream`, hosting `Pow`. */
  ServerStream: ServiceConstructor<PowClient>;
  /** `stream.ClientStream`, hosting `Sum`. */
  ClientStream: ServiceConstructor<SumClient>;
  /** `stream.BidirectionalStreamServer`, hosting `Sqrt`. */
  BidirectionalStreamServer: ServiceConstructor<SqrtClient>;
  /** `stream.Single`, hosting the unary `Sqrt`. */
  Single: ServiceConstructor<SingleClient>;
}

function loadStreamPackage(): StreamPackage {
  // proto-loader's `loadSync(path, options)` would read files; `fromJSON` of the same text
  // is its documented equivalent for sources that are not on disk.
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
  const packageDefinition = fromJSON(root.toJSON(), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(packageDefinition);
  return loaded.stream as unknown as StreamPackage;
}

/** The `stream` package, loaded once. */
export const streamPackage: StreamPackage = loadStreamPackage();
