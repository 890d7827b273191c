/**
 * The seam through which the tests choose a client's HTTP/2 layer; not part of the module's
 * API (`mod.ts` does not export it). A test attaches a probe to the options object it creates
 * a client with:
 *
 * ```ts ignore
 * const options = {};
 * probeClient(options).ownHttp2 = true;
 * using client = createClient(address, options);
 * ```
 *
 * @module
 */

/** What a test chooses for one client. */
export class ClientProbe {
  /**
   * Whether the client's cleartext connections use its own HTTP/2 (`http2/`); `undefined`
   * leaves it to `GRPC_STREAM_HTTP2`.
   */
  ownHttp2: boolean | undefined = undefined;
}

const probes = new WeakMap<object, ClientProbe>();

/**
 * The probe of the client created with `options`, attached now if it has none.
 *
 * @param options The options object the client is, or will be, created with.
 * @returns Its probe.
 */
export function probeClient(options: object): ClientProbe {
  let probe = probes.get(options);
  if (probe === undefined) {
    probe = new ClientProbe();
    probes.set(options, probe);
  }
  return probe;
}

/**
 * The probe attached to `options`, if any.
 *
 * @param options A client's options object.
 * @returns The probe, or `undefined`.
 */
export function clientProbeOf(options: object): ClientProbe | undefined {
  return probes.get(options);
}
