import { createRequire } from 'node:module';
import type HandlebarsNamespace from 'handlebars';

let loaded: typeof HandlebarsNamespace | undefined;

/**
 * Handlebars, loaded on the first template compile instead of at import: the compiler is ~30 CommonJS
 * files, and commands that render no profile (`cert list`, `cert revoke`, `user list`) should not pay
 * for them at start-up. Synchronous (CommonJS require), so the renderers stay synchronous.
 */
export function handlebars(): typeof HandlebarsNamespace {
  loaded ??= createRequire(import.meta.url)('handlebars') as typeof HandlebarsNamespace;
  return loaded;
}
