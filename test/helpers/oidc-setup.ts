import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Jar, throughProvider } from './oidc-driver.js';

/** A listening HTTP server whose handler is attached later (the redirect URL needs the port first). */
export async function reservePort(): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A real ID token that a provider issued to `clientId`, obtained through the provider's own login page
 * and token endpoint (used to play a mix-up attacker who swaps it into podgate's token response).
 */
export async function realIdToken(
  issuer: string,
  clientId: string,
  redirectUri: string,
  login: string,
): Promise<string> {
  const jar = new Jar();
  const verifier = randomBytes(32).toString('base64url');
  const auth = new URL(`${issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope: 'openid profile groups',
    redirect_uri: redirectUri,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: 'x',
    nonce: 'other-nonce',
  }).toString();
  const back = new URL(await throughProvider(jar, auth.href, login, redirectUri));
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`no code for ${clientId}: ${back.href}`);
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: 'Basic ' + Buffer.from(`${clientId}:podgate-test-client-secret`).toString('base64'),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    }).toString(),
  });
  const json = (await res.json()) as { id_token?: string };
  if (!json.id_token) throw new Error(`no id_token for ${clientId}: ${JSON.stringify(json)}`);
  return json.id_token;
}

/**
 * A fetch for podgate's OpenID client that passes everything to the real provider but replaces the
 * ID token in token-endpoint answers with `swap()` when it returns one: a network attacker's mix-up.
 */
export function swappingFetch(
  swap: () => string | undefined,
): (url: string, init: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const res = await fetch(url, init);
    const token = swap();
    if (!token || !new URL(url).pathname.endsWith('/token')) return res;
    const json = (await res.json()) as Record<string, unknown>;
    if (typeof json.id_token === 'string') json.id_token = token;
    return new Response(JSON.stringify(json), { status: res.status, headers: res.headers });
  };
}
