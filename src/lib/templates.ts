import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/**
 * The package root (package.json and templates/ beside each other), found by walking up from this
 * code: it runs from src/ (tsx), dist/src/ (tsc) and dist/bundle/ (the esbuild bundle, where this
 * module's URL is the bundle's).
 */
function findPackageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start, i = 0; i < 6; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'templates'))) return dir;
  }
  throw new Error(`package root (package.json + templates/) not found above ${start}`);
}

export const PACKAGE_ROOT = findPackageRoot();
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
