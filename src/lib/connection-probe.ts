/**
 * The answer to "Check my connection" (the devices page fetches it through the tunnel): the literal
 * `reachable` and the nonce the page sent, nothing else. A captive portal or another host answers
 * something else, so it cannot make a check green; the page compares the nonce it made itself.
 *
 * Cross-origin: the page lives on podgate's web origin and the probe on a tunnel, pod or Service
 * address, so the answer carries `Access-Control-Allow-Origin` for that one origin only (never `*`):
 * another site's script cannot use a browser to map what its visitor's tunnel reaches.
 */

/** The path every responder answers (the agent, `server run`, the manager's own web app). */
export const PROBE_PATH = '/connection-probe';

const NONCE = /^[A-Za-z0-9_-]{16,64}$/;

export interface ProbeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The origin (scheme://host[:port]) of web.publicUrl, the only one allowed to read the answer. */
export function webOrigin(publicUrl: string | undefined): string | undefined {
  if (!publicUrl) return undefined;
  try {
    return new URL(publicUrl).origin;
  } catch {
    return undefined;
  }
}

/**
 * The response to `GET|OPTIONS /connection-probe?nonce=…` from a browser whose page is at `origin`
 * (the request's Origin header). Pure: the listeners (node:http, express) only copy it out.
 */
export function probeAnswer(
  method: string,
  nonce: unknown,
  origin: string | undefined,
  allowedOrigin: string | undefined,
): ProbeAnswer {
  const headers: Record<string, string> = {
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    // Readable by the allowed origin through CORS only; helmet's same-origin default would block it.
    'Cross-Origin-Resource-Policy': 'cross-origin',
    Vary: 'Origin',
  };
  if (allowedOrigin && origin === allowedOrigin) {
    headers['Access-Control-Allow-Origin'] = allowedOrigin;
    // Chromium's Private Network Access preflight (a page on a public address asking a private one).
    headers['Access-Control-Allow-Private-Network'] = 'true';
    headers['Access-Control-Allow-Methods'] = 'GET';
  }
  if (method === 'OPTIONS') return { status: 204, headers, body: '' };
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, headers, body: '' };
  if (typeof nonce !== 'string' || !NONCE.test(nonce)) {
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    return { status: 400, headers, body: 'nonce must be 16-64 characters of A-Z a-z 0-9 _ -\n' };
  }
  headers['Content-Type'] = 'application/json';
  return { status: 200, headers, body: JSON.stringify({ podgate: 'reachable', nonce }) };
}
