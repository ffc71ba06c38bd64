/**
 * A client that fetches profiles the way OpenVPN Connect does (openvpn3 doc/webauth.md):
 *
 * - `followImportLink`: takes an `openvpn://import-profile/<https URL>` link, strips the scheme part,
 *   GETs the inner URL without any credential and accepts only `application/x-openvpn-profile`.
 * - `restImport`: "Import profile → URL": `GET <server>/rest/GetUserlogin` (or GetAutologin) with
 *   `tls-cryptv2=1&action=import` and HTTP Basic credentials; a profile comes back as text, a failure
 *   as an XML `<Error>` body with an HTTP error status, parsed into type / synopsis / message.
 *
 * It does not model Connect's certificate prompts (the tests serve plain http on loopback) nor the
 * challenge/response (CRV1) flow, which podgate never starts.
 */
export interface ConnectError {
  status: number;
  type: string;
  synopsis: string;
  message: string;
}

export type ConnectResult =
  | { ok: true; status: number; profile: string; contentType: string; headers: Headers }
  | { ok: false; status: number; error: ConnectError | undefined; body: string; headers: Headers };

const PREFIX = 'openvpn://import-profile/';

function xmlField(body: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(body);
  return m?.[1]?.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
}

/** Parses Access Server's REST `<Error>` body; undefined when the body is not one. */
export function parseConnectError(status: number, body: string): ConnectError | undefined {
  if (!/<Error>/.test(body)) return undefined;
  return {
    status,
    type: xmlField(body, 'Type') ?? '',
    synopsis: xmlField(body, 'Synopsis') ?? '',
    message: xmlField(body, 'Message') ?? '',
  };
}

/** Follows an import-profile link like Connect; `rewrite` lets a test reach the inner URL's host. */
export async function followImportLink(link: string): Promise<ConnectResult> {
  if (!link.startsWith(PREFIX)) throw new Error(`not an import-profile link: ${link}`);
  const url = link.slice(PREFIX.length);
  if (!/^https?:\/\//.test(url)) throw new Error(`the link does not hold an http(s) URL: ${url}`);
  const res = await fetch(url, { redirect: 'manual' });
  const body = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  if (res.ok && contentType.startsWith('application/x-openvpn-profile'))
    return { ok: true, status: res.status, profile: body, contentType, headers: res.headers };
  return {
    ok: false,
    status: res.status,
    error: parseConnectError(res.status, body),
    body,
    headers: res.headers,
  };
}

/** Connect's REST import with HTTP Basic credentials. */
export async function restImport(
  server: string,
  user: string,
  password: string,
  method: 'GetUserlogin' | 'GetAutologin' = 'GetUserlogin',
): Promise<ConnectResult> {
  const auth = Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
  const res = await fetch(`${server}/rest/${method}?tls-cryptv2=1&action=import`, {
    headers: { Authorization: `Basic ${auth}` },
    redirect: 'manual',
  });
  const body = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  if (res.ok && /^client\b/m.test(body))
    return { ok: true, status: res.status, profile: body, contentType, headers: res.headers };
  return {
    ok: false,
    status: res.status,
    error: parseConnectError(res.status, body),
    body,
    headers: res.headers,
  };
}
