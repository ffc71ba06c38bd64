import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The package root: works from src/ (tsx) and from dist/src/ (compiled). */
export const PACKAGE_ROOT = fileURLToPath(
  new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url),
);
export const TEMPLATES_DIR = join(PACKAGE_ROOT, 'templates');

const cache = new Map<string, string>();
/** Reads templates/<name> once (templates ship with the package; they are not user input). */
export function loadTemplate(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(join(TEMPLATES_DIR, name), 'utf8');
    cache.set(name, text);
  }
  return text;
}
