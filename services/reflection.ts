/**
 * gRPC server reflection (`grpc.reflection.v1` and `v1alpha`), answered by
 * `@grpc/reflection` from the descriptors of every service a server hosts, so that tools such
 * as `buf curl` and `grpcurl` can list and call them without the `.proto` files.
 *
 * `ReflectionService.addToServer` reads the reflection `.proto` files from disk, which under
 * Deno needs `--allow-read` for the npm cache; here the same files arrive as text imports
 * (see `proto/standard.ts`) and only the package's request handler is used.
 *
 * @module
 */
import type * as grpc from "../internals/npm/grpc_js.ts";
import type { PackageDefinition } from "../internals/npm/proto_loader.ts";
import { ReflectionV1Implementation } from "../internals/npm/grpc_reflection.ts";
import { reflectionServices, withProtocMapEntries } from "../proto/standard.ts";

/** One reflection service to register: its definition and its handlers. */
export interface ReflectionRegistration {
  /** The service definition, for `grpc.Server.addService`. */
  service: grpc.ServiceDefinition;
  /** The handlers, for `grpc.Server.addService`. */
  handlers: grpc.UntypedServiceImplementation;
}

/**
 * Creates both versions of the reflection service, describing every service in `definition`.
 *
 * @param definition Everything the server hosts, as `@grpc/proto-loader` describes it.
 * @returns The `v1` and `v1alpha` services with their handlers.
 */
export function createReflection(
  definition: PackageDefinition,
): ReflectionRegistration[] {
  const reflection = new ReflectionV1Implementation(
    withProtocMapEntries(definition) as ConstructorParameters<
      typeof ReflectionV1Implementation
    >[0],
  );
  const serverReflectionInfo: grpc.handleBidiStreamingCall<
    Parameters<typeof reflection.handleServerReflectionRequest>[0],
    ReturnType<typeof reflection.handleServerReflectionRequest>
  > = (call) => {
    call.on("data", (request) => {
      call.write(reflection.handleServerReflectionRequest(request));
    });
    call.on("end", () => call.end());
  };
  const handlers = { ServerReflectionInfo: serverReflectionInfo };
  return [
    { service: reflectionServices.v1, handlers },
    { service: reflectionServices.v1alpha, handlers },
  ];
}
