/**
 * The article's ports 8081, 8082 and 8083 are the only fixed ports of the suite: the two
 * tests of tests/cli/article_ports_test.ts, which prove the command line and the examples
 * meet there by default, run only when all three are free, and say so in their name when
 * not (a `deno task serve` in another terminal holds them). The defaults themselves are
 * checked on every run by tests/cli/defaults_test.ts.
 *
 * @module
 */

/** The article's ports, as its Go programs use them. */
export const ARTICLE_PORTS: readonly number[] = [8081, 8082, 8083];

/** The first of the article's ports that something on 127.0.0.1 listens on, if any. */
export function takenArticlePort(): number | undefined {
  return ARTICLE_PORTS.find((port) => {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return false;
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) return true;
      throw error;
    }
  });
}

/**
 * A test on the article's ports: its name, and `ignore` when a port is taken.
 *
 * @param name What the test proves.
 * @returns The name (saying why it is ignored, when it is) and whether to ignore it.
 */
export function onArticlePorts(
  name: string,
): { name: string; ignore: boolean } {
  const taken = takenArticlePort();
  return taken === undefined ? { name, ignore: false } : {
    name:
      `${name} (ignored: 127.0.0.1:${taken} is in use, as by a running deno task serve)`,
    ignore: true,
  };
}
