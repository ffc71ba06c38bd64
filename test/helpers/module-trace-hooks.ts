/**
 * Module customization hooks for ./module-trace.ts (they run on Node's loader thread): append every
 * resolved URL to the trace file as it is resolved, so a process that exits early still leaves them.
 */
import { appendFileSync } from 'node:fs';

let file = '';

export function initialize(data: { file: string }): void {
  file = data.file;
}

type Next = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: unknown, next: Next): Promise<{ url: string }> {
  const result = await next(specifier, context);
  if (file) appendFileSync(file, `esm:${result.url}\n`);
  return result;
}
