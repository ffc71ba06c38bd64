/**
 * Minimal JSON REST calls to the test cluster's API server with a client certificate (the harness's own
 * needs: registering nodes, the kubelet simulator). podgate's code under test uses @kubernetes/client-node.
 */
import { request } from 'node:https';

export interface RestCreds {
  server: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface RestResponse<T = unknown> {
  status: number;
  body: T;
}

export function rest<T = unknown>(
  creds: RestCreds,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<RestResponse<T>> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      new URL(path, creds.server),
      {
        method,
        ca: creds.ca,
        cert: creds.cert,
        key: creds.key,
        timeout: 10_000,
        headers: {
          accept: 'application/json',
          ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Like rest() but throws unless the status is 2xx (or listed in `also`). */
export async function restOk<T = unknown>(
  creds: RestCreds,
  method: string,
  path: string,
  body?: unknown,
  contentType?: string,
  also: number[] = [],
): Promise<RestResponse<T>> {
  const res = await rest<T>(creds, method, path, body, contentType);
  if ((res.status < 200 || res.status > 299) && !also.includes(res.status)) {
    throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
  }
  return res;
}
