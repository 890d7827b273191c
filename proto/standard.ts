/**
 * The standard gRPC services a server hosts beside the wire contract: health checking
 * (`grpc.health.v1.Health`) and server reflection (`grpc.reflection.v1.ServerReflection` and
 * its predecessor `grpc.reflection.v1alpha.ServerReflection`).
 *
 * The `.proto` files are vendored in `proto/grpc/` (copied from `grpc-health-check` and
 * `@grpc/reflection`, see its README) and taken as text imports: those packages read them
 * from disk with `fs` when they load, which under Deno needs `--allow-read` for the npm
 * cache, while a text import needs no permission.
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";
import { Buffer } from "node:buffer";
import {
  fromJSON,
  type PackageDefinition,
} from "../internals/npm/proto_loader.ts";
import protobuf from "../internals/npm/protobufjs.ts";
import descriptor from "../internals/npm/protobufjs_descriptor.ts";
import healthProto from "./grpc/health/v1/health.proto" with { type: "text" };
import reflectionV1Proto from "./grpc/reflection/v1/reflection.proto" with {
  type: "text",
};
import reflectionV1AlphaProto from "./grpc/reflection/v1alpha/reflection.proto" with {
  type: "text",
};

/** The fully qualified name of the health service. */
const HEALTH_SERVICE_NAME = "grpc.health.v1.Health";

function load(
  sources: readonly string[],
  options: Parameters<typeof fromJSON>[1],
): PackageDefinition {
  const root = new protobuf.Root();
  for (const source of sources) {
    protobuf.parse(source, root, { keepCase: options?.keepCase ?? false });
  }
  return fromJSON(root.toJSON(), options);
}

/** A `google.protobuf.DescriptorProto`, as far as map entries concern it. */
interface MessageDescriptor {
  name?: string;
  field?: { label?: number; type?: number; typeName?: string }[];
  nestedType?: MessageDescriptor[];
  options?: { mapEntry?: boolean } | null;
}

const LABEL_REPEATED = 3;
const TYPE_MESSAGE = 11;

/**
 * Names the entry message of each map field `FieldNameEntry`, as `protoc` does and as strict
 * descriptor parsers (Go's, used by `buf curl` and `grpcurl`) require. protobufjs names it
 * `FieldName`, and those tools then reject the whole file.
 */
function fixMapEntryNames(message: MessageDescriptor): void {
  const renamed = new Map<string, string>();
  for (const nested of message.nestedType ?? []) {
    if (nested.options?.mapEntry && !nested.name?.endsWith("Entry")) {
      renamed.set(nested.name!, `${nested.name}Entry`);
      nested.name = `${nested.name}Entry`;
    }
    fixMapEntryNames(nested);
  }
  for (const field of message.field ?? []) {
    const entryName = field.typeName === undefined
      ? undefined
      : renamed.get(field.typeName);
    if (
      field.label === LABEL_REPEATED && field.type === TYPE_MESSAGE &&
      entryName !== undefined
    ) {
      field.typeName = entryName;
    }
  }
}

/**
 * A copy of `definition` whose file descriptors, the ones server reflection sends, have their
 * map entry messages named as `protoc` names them.
 *
 * @param definition A package definition from `@grpc/proto-loader`.
 * @returns The same definition with corrected file descriptors.
 */
export function withProtocMapEntries(
  definition: PackageDefinition,
): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>();
  function fix(bytes: Buffer): Buffer {
    let result = fixed.get(bytes);
    if (result === undefined) {
      const file = descriptor.FileDescriptorProto.decode(bytes) as {
        messageType?: MessageDescriptor[];
      };
      for (const message of file.messageType ?? []) fixMapEntryNames(message);
      result = Buffer.from(
        descriptor.FileDescriptorProto.encode(
          file as protobuf.Message<Record<string, unknown>>,
        ).finish(),
      );
      fixed.set(bytes, result);
    }
    return result;
  }
  const copy: PackageDefinition = {};
  for (const [name, entry] of Object.entries(definition)) {
    const files = (entry as { fileDescriptorProtos?: Buffer[] })
      .fileDescriptorProtos;
    copy[name] = Array.isArray(files)
      ? { ...entry, fileDescriptorProtos: files.map(fix) } as typeof entry
      : entry;
  }
  return copy;
}

/** `grpc.health.v1`, as `@grpc/proto-loader` describes it (with file descriptors). */
export const healthPackageDefinition: PackageDefinition = load([healthProto], {
  keepCase: true,
  enums: String,
  defaults: true,
  oneofs: true,
});

/**
 * `grpc.reflection.v1` and `grpc.reflection.v1alpha`, loaded with the options
 * `@grpc/reflection` loads them with, so its request handler reads the fields it expects.
 */
export const reflectionPackageDefinition: PackageDefinition = load(
  [reflectionV1Proto, reflectionV1AlphaProto],
  {
    longs: String,
    enums: String,
    bytes: Array,
    defaults: true,
    oneofs: true,
  },
);

function serviceOf(
  definition: PackageDefinition,
  name: string,
): grpc.ServiceDefinition {
  const service = definition[name] as grpc.ServiceDefinition | undefined;
  if (service === undefined || "format" in service) {
    throw new TypeError(`Service is missing from its package: ${name}`);
  }
  return service;
}

/** The health service, for `grpc.Server.addService`. */
export const healthService: grpc.ServiceDefinition = serviceOf(
  healthPackageDefinition,
  HEALTH_SERVICE_NAME,
);

/** Both versions of the reflection service, for `grpc.Server.addService`. */
export const reflectionServices: {
  v1: grpc.ServiceDefinition;
  v1alpha: grpc.ServiceDefinition;
} = {
  v1: serviceOf(
    reflectionPackageDefinition,
    "grpc.reflection.v1.ServerReflection",
  ),
  v1alpha: serviceOf(
    reflectionPackageDefinition,
    "grpc.reflection.v1alpha.ServerReflection",
  ),
};
