/**
 * The Node options the image runs `podgate` with (Dockerfile `ENV NODE_OPTIONS`), for benchmarks that
 * start `serve` themselves; test/unit/build/dockerfile.test.ts keeps the two equal.
 */
export const SERVE_NODE_ARGS: readonly string[] = ['--max-semi-space-size=2'];
