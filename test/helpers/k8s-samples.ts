/**
 * The recorded Kubernetes payloads of test/fixtures/k8s-samples (SOURCES.md there gives each file's
 * provenance), read by the real-cluster tests (objects to create) and by the fake API server.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The sample directory. */
export const SAMPLES = fileURLToPath(new URL('../../../test/fixtures/k8s-samples/', import.meta.url));

/** Reads one sample payload as JSON. */
export function sample<T = { [k: string]: Json }>(file: string): T {
  return JSON.parse(readFileSync(`${SAMPLES}/${file}`, 'utf8')) as T;
}
