/**
 * The standard health service, `grpc.health.v1.Health`: `Check`, `Watch` and `List` over a
 * map of service names to their serving status, as `grpc-health-check` implements them.
 *
 * `grpc-health-check` itself reads its `.proto` file from disk when it is imported, which
 * under Deno needs `--allow-read` for the npm cache; this implementation uses the same
 * `.proto` through a text import (see `proto/standard.ts`) and needs no permission.
 *
 * @module
 */
import * as grpc from "../internals/npm/grpc_js.ts";
import { healthService } from "../proto/standard.ts";

/** The serving status of one service, as `grpc.health.v1.HealthCheckResponse` names it. */
export type ServingStatus = "SERVING" | "NOT_SERVING";

type WatchStatus = ServingStatus | "SERVICE_UNKNOWN";

interface HealthRequest {
  service: string;
}

interface HealthReply {
  status: WatchStatus;
}

interface HealthListReply {
  statuses: Record<string, { status: ServingStatus }>;
}

/** The health service of one server. */
export interface Health {
  /** The service definition, for `grpc.Server.addService`. */
  readonly service: grpc.ServiceDefinition;
  /** The handlers, for `grpc.Server.addService`. */
  readonly handlers: grpc.UntypedServiceImplementation;
  /** Sets the status of every service and tells every `Watch` call. */
  setAll(status: ServingStatus): void;
  /** Ends every `Watch` call with `OK`, so that they do not hold up a shutdown. */
  endWatches(): void;
}

/** The most services `List` reports, as in `grpc-health-check`. */
const LIST_LIMIT = 100;

/**
 * Creates the health service for a server hosting `serviceNames`. Each of them, and `""` (the
 * server as a whole), starts as `SERVING`.
 *
 * @param serviceNames The fully qualified names of the hosted services.
 * @returns The service, its handlers and the means to change the statuses.
 */
export function createHealth(serviceNames: readonly string[]): Health {
  const statuses = new Map<string, ServingStatus>(
    ["", ...serviceNames].map((name) => [name, "SERVING"]),
  );
  const watches = new Set<{
    service: string;
    call: grpc.ServerWritableStream<HealthRequest, HealthReply>;
  }>();

  const check: grpc.handleUnaryCall<HealthRequest, HealthReply> = (
    call,
    callback,
  ) => {
    const status = statuses.get(call.request.service);
    if (status === undefined) {
      callback({
        code: grpc.status.NOT_FOUND,
        details: `Health status unknown for service ${call.request.service}`,
      });
    } else {
      callback(null, { status });
    }
  };

  const watch: grpc.handleServerStreamingCall<HealthRequest, HealthReply> = (
    call,
  ) => {
    const watch = { service: call.request.service, call };
    watches.add(watch);
    call.on("cancelled", () => watches.delete(watch));
    call.write({ status: statuses.get(watch.service) ?? "SERVICE_UNKNOWN" });
  };

  const list: grpc.handleUnaryCall<unknown, HealthListReply> = (
    _call,
    callback,
  ) => {
    if (statuses.size > LIST_LIMIT) {
      callback({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: "Too many services to list",
      });
      return;
    }
    const reply: HealthListReply = { statuses: {} };
    for (const [name, status] of statuses) reply.statuses[name] = { status };
    callback(null, reply);
  };

  return {
    service: healthService,
    handlers: { Check: check, Watch: watch, List: list },
    setAll(status: ServingStatus): void {
      for (const name of statuses.keys()) statuses.set(name, status);
      for (const { service, call } of watches) {
        if (statuses.has(service)) call.write({ status });
      }
    },
    endWatches(): void {
      for (const { call } of watches) call.end();
      watches.clear();
    },
  };
}
