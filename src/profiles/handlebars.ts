import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type HandlebarsNamespace from 'handlebars';
import { PRECOMPILED } from './precompiled-templates.js';

type Handlebars = typeof HandlebarsNamespace;
let loaded: Handlebars | undefined;
let runtime: Handlebars | undefined;

/**
 * Handlebars, loaded on the first template compile instead of at import: the compiler is ~30 CommonJS
 * files, and commands that render no profile (`cert list`, `cert revoke`, `user list`) should not pay
 * for them at start-up. Synchronous (CommonJS require), so the renderers stay synchronous.
 */
export function handlebars(): Handlebars {
  loaded ??= createRequire(import.meta.url)('handlebars') as Handlebars;
  return loaded;
}

/** The options every profile template (client.ovpn, server.conf) is compiled with. */
export const PROFILE_TEMPLATE_OPTIONS: Readonly<CompileOptions> = Object.freeze({
  noEscape: true,
  strict: true,
});

/** Key of a template's precompiled spec: its text and the options it is compiled with. */
export function templateKey(text: string): string {
  return createHash('sha256')
    .update(JSON.stringify(PROFILE_TEMPLATE_OPTIONS))
    .update('\0')
    .update(text)
    .digest('hex');
}

/**
 * A profile template's render function: from the spec precompiled at build time when the text is the
 * one the build saw (only Handlebars' small runtime is loaded then), else compiled here.
 */
export function compileProfileTemplate(text: string): HandlebarsTemplateDelegate {
  const spec = PRECOMPILED[templateKey(text)];
  if (spec) {
    runtime ??= createRequire(import.meta.url)('handlebars/runtime') as Handlebars;
    return runtime.template(spec as TemplateSpecification);
  }
  // a copy: Handlebars adds its own keys to the options object it is given
  return handlebars().compile(text, { ...PROFILE_TEMPLATE_OPTIONS });
}
