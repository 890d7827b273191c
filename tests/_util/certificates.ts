/**
 * Certificates for the TLS tests, made with `openssl` when first asked for: a test CA, a
 * server certificate for `localhost`, `127.0.0.1` and `::1`, a client certificate from the same
 * CA, and a second CA with a client certificate of its own, which nothing trusts.
 *
 * @module
 */

/** PEM texts of the test certificates and keys. */
export interface TestCertificates {
  /** The CA that signs `serverCert` and `clientCert`. */
  ca: string;
  /** The server's certificate: `DNS:localhost`, `IP:127.0.0.1`, `IP:::1`. */
  serverCert: string;
  /** The key of `serverCert`. */
  serverKey: string;
  /** A client certificate signed by `ca`. */
  clientCert: string;
  /** The key of `clientCert`. */
  clientKey: string;
  /** A CA that signed nothing the server uses. */
  otherCa: string;
  /** A client certificate signed by `otherCa`. */
  otherClientCert: string;
  /** The key of `otherClientCert`. */
  otherClientKey: string;
}

/** The files of {@linkcode TestCertificates} in a directory, by the same names. */
export type TestCertificateFiles = Record<keyof TestCertificates, string>;

const DAYS = "3650";
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

async function openssl(directory: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: directory,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`,
    );
  }
}

async function makeCa(directory: string, name: string): Promise<void> {
  await openssl(directory, [
    "req",
    "-x509",
    ...EC_KEY,
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    DAYS,
    "-subj",
    `/CN=grpc-stream test ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

/** A certificate signed by one of the test CAs. */
interface Leaf {
  /** The file names' stem: `name.crt`, `name.key`. */
  name: string;
  /** The stem of the signing CA's files. */
  ca: string;
  commonName: string;
  /** The OpenSSL extension lines. */
  extensions: string;
}

async function makeLeaf(
  directory: string,
  { name, ca, commonName, extensions }: Leaf,
): Promise<void> {
  await openssl(directory, [
    "req",
    ...EC_KEY,
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${commonName}`,
  ]);
  await Deno.writeTextFile(`${directory}/${name}.ext`, extensions);
  await openssl(directory, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-set_serial",
    `0x${crypto.randomUUID().replaceAll("-", "")}`,
    "-days",
    DAYS,
    "-out",
    `${name}.crt`,
    "-extfile",
    `${name}.ext`,
  ]);
}

async function make(): Promise<TestCertificates> {
  const directory = await Deno.makeTempDir({ prefix: "grpc-stream-certs-" });
  try {
    await Promise.all([makeCa(directory, "ca"), makeCa(directory, "other-ca")]);
    const leaf =
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n";
    await Promise.all([
      makeLeaf(directory, {
        name: "server",
        ca: "ca",
        commonName: "localhost",
        extensions:
          `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n`,
      }),
      makeLeaf(directory, {
        name: "client",
        ca: "ca",
        commonName: "client",
        extensions: `${leaf}extendedKeyUsage=clientAuth\n`,
      }),
      makeLeaf(directory, {
        name: "other-client",
        ca: "other-ca",
        commonName: "other client",
        extensions: `${leaf}extendedKeyUsage=clientAuth\n`,
      }),
    ]);
    const read = (name: string) => Deno.readTextFile(`${directory}/${name}`);
    return {
      ca: await read("ca.crt"),
      serverCert: await read("server.crt"),
      serverKey: await read("server.key"),
      clientCert: await read("client.crt"),
      clientKey: await read("client.key"),
      otherCa: await read("other-ca.crt"),
      otherClientCert: await read("other-client.crt"),
      otherClientKey: await read("other-client.key"),
    };
  } finally {
    await Deno.remove(directory, { recursive: true });
  }
}

let made: Promise<TestCertificates> | undefined;

/** The test certificates, made once per test process. */
export function testCertificates(): Promise<TestCertificates> {
  made ??= make();
  return made;
}

/** A temporary directory, removed on disposal. */
export interface TempDirectory extends AsyncDisposable {
  /** Its path. */
  readonly path: string;
}

/** Creates a {@linkcode TempDirectory}. */
export async function tempDirectory(): Promise<TempDirectory> {
  const path = await Deno.makeTempDir({ prefix: "grpc-stream-test-" });
  return {
    path,
    async [Symbol.asyncDispose](): Promise<void> {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/**
 * Writes the test certificates into `directory`, for tools that read files.
 *
 * @returns The path of each file.
 */
export async function writeCertificates(
  directory: string,
): Promise<TestCertificateFiles> {
  const certificates = await testCertificates();
  const files = {} as TestCertificateFiles;
  for (const [name, pem] of Object.entries(certificates)) {
    const path = `${directory}/${name}.pem`;
    await Deno.writeTextFile(path, pem);
    files[name as keyof TestCertificates] = path;
  }
  return files;
}
