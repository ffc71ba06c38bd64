/**
 * Handlebars specs of templates/*.hbs compiled at build time, keyed by templateKey(text). Empty in the
 * tsc build: scripts/bundle.mjs replaces this module in the bundle with the specs of the templates it
 * ships, so that `server run` and `cert issue` neither load the Handlebars compiler nor compile (a
 * template whose text differs from the build's, e.g. edited in place, is compiled as before).
 */
export const PRECOMPILED: Readonly<Record<string, object>> = {};
