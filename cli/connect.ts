/**
 * Where the calling commands connect and with what TLS: addresses, permissions and PEM files.
 *
 * @module
 */
import {
  type Address,
  type ClientOptions,
  parseAddress,
  type ServerTlsOptions,
} from "../mod.ts";
import {
  asUsageError,
  InputError,
  parseDuration,
  shown,
  UsageError,
} from "./args.ts";

/** Splits `host:port` or `[v6]:port` as the client does; another form is a usage error. */
export function splitAddress(address: string, usage: string): Address {
  try {
    return parseAddress(address);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new UsageError(`Address must be HOST:PORT: ${shown(address)}`, usage);
  }
}

/**
 * Checks the address a client command calls, and its net permission, so that a missing
 * permission reads as one plain line rather than a failed DNS lookup.
 */
export async function checkServerAddress(
  address: string,
  usage: string,
): Promise<string> {
  const { hostname, port } = splitAddress(address, usage);
  const host = hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
  const descriptor = { name: "net", host } as const;
  let { state } = await Deno.permissions.query(descriptor);
  if (state === "prompt") {
    ({ state } = await Deno.permissions.request(descriptor));
  }
  if (state !== "granted") {
    throw new Error(
      `Requires net access to ${host}: run again with --allow-net=${
        hostname.includes(":") ? `[${hostname}]` : hostname
      }`,
    );
  }
  return address;
}

/** Reads a PEM file named on the command line, asking Deno for read access first. */
async function readPemFile(
  path: string,
  option: string,
): Promise<string> {
  const descriptor = { name: "read", path } as const;
  let { state } = await Deno.permissions.query(descriptor);
  if (state === "prompt") {
    ({ state } = await Deno.permissions.request(descriptor));
  }
  if (state !== "granted") {
    throw new Error(
      `Requires read access to ${path} (--${option}): run again with --allow-read=${path}`,
    );
  }
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new InputError(`File of --${option} not found: ${path}`);
    }
    throw error;
  }
}

/** What a PEM file named on the command line must hold, by the option that names it. */
const PEM_CONTENTS = {
  certificate: {
    block: /^-----BEGIN CERTIFICATE-----$/m,
    missing: "No certificate in",
    example: "-----BEGIN CERTIFICATE-----",
  },
  key: {
    block: /^-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----$/m,
    missing: "No private key in",
    example: "-----BEGIN PRIVATE KEY-----",
  },
} as const;

/**
 * Reads a PEM file and checks it holds a certificate (`--ca`, `--cert`, `--client-ca`) or a
 * private key (`--key`): a key given to `--ca` would otherwise fail only at the handshake, as
 * `unable to verify the first certificate`.
 */
async function readPemOption(
  path: string,
  option: "ca" | "cert" | "key" | "client-ca",
): Promise<string> {
  const pem = await readPemFile(path, option);
  const contents = PEM_CONTENTS[option === "key" ? "key" : "certificate"];
  if (!contents.block.test(pem)) {
    throw new InputError(
      `${contents.missing} ${path}: --${option} takes a PEM file with ${contents.example}`,
    );
  }
  return pem;
}

/** The calling commands' options for one call: `--timeout`, as a call's `timeout`. */
export function callTimeout(
  values: { timeout?: string | undefined },
  usage: string,
): { timeout?: number } {
  if (values.timeout === undefined) return {};
  return {
    timeout: asUsageError(
      usage,
      () => parseDuration(values.timeout!, "Timeout"),
    ),
  };
}

/** The connection options of the calling commands, read into {@linkcode ClientOptions}. */
export async function clientOptions(
  values: {
    tls?: boolean | undefined;
    ca?: string | undefined;
    cert?: string | undefined;
    key?: string | undefined;
    "server-name"?: string | undefined;
    "connect-timeout"?: string | undefined;
  },
  usage: string,
): Promise<ClientOptions> {
  const connectTimeout = values["connect-timeout"];
  const connection: ClientOptions = connectTimeout === undefined ? {} : {
    connectTimeoutMs: asUsageError(
      usage,
      () => parseDuration(connectTimeout, "Connect timeout"),
    ),
  };
  return { ...connection, ...await tlsOptions(values, usage) };
}

/** The TLS options of the calling commands. */
async function tlsOptions(
  values: {
    tls?: boolean | undefined;
    ca?: string | undefined;
    cert?: string | undefined;
    key?: string | undefined;
    "server-name"?: string | undefined;
  },
  usage: string,
): Promise<ClientOptions> {
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("Use --cert and --key together", usage);
  }
  const useTls = values.tls === true || values.ca !== undefined ||
    values.cert !== undefined || values["server-name"] !== undefined;
  if (!useTls) return {};
  if (values["server-name"] === "") {
    throw new UsageError("Server name must not be empty", usage);
  }
  return {
    tls: {
      ...(values.ca === undefined
        ? {}
        : { ca: await readPemOption(values.ca, "ca") }),
      ...(values.cert === undefined ? {} : {
        cert: await readPemOption(values.cert, "cert"),
        key: await readPemOption(values.key!, "key"),
      }),
      ...(values["server-name"] === undefined
        ? {}
        : { serverName: values["server-name"] }),
    },
  };
}

/** The TLS options of `serve`, read into {@linkcode ServerTlsOptions}. */
export async function serverTlsOptions(
  values: {
    cert?: string | undefined;
    key?: string | undefined;
    "client-ca"?: string | undefined;
  },
  usage: string,
): Promise<ServerTlsOptions | undefined> {
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError("Use --cert and --key together", usage);
  }
  if (values.cert === undefined) {
    if (values["client-ca"] !== undefined) {
      throw new UsageError("Use --client-ca with --cert and --key", usage);
    }
    return undefined;
  }
  return {
    cert: await readPemOption(values.cert, "cert"),
    key: await readPemOption(values.key!, "key"),
    ...(values["client-ca"] === undefined
      ? {}
      : { ca: await readPemOption(values["client-ca"], "client-ca") }),
  };
}
