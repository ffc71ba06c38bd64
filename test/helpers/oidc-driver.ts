/**
 * A minimal scripted browser for the OpenID Connect round trip without Chromium: a cookie jar per
 * host, redirects followed by hand, and the provider's login and consent forms submitted as a person
 * would. The Chromium test covers the real browser; this one lets integration tests stop at any step
 * and tamper with it (state, nonce, PKCE, next).
 */
export class Jar {
  private readonly byHost = new Map<string, Map<string, string>>();

  store(url: string, res: Response): void {
    const host = new URL(url).host;
    const jar = this.byHost.get(host) ?? new Map<string, string>();
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    this.byHost.set(host, jar);
  }

  header(url: string): string {
    const jar = this.byHost.get(new URL(url).host);
    return jar ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }

  get(url: string, name: string): string | undefined {
    return this.byHost.get(new URL(url).host)?.get(name);
  }
}

export interface Step {
  url: string;
  status: number;
  location?: string;
  body: string;
}

/** One request with the jar's cookies; never follows redirects. */
export async function request(
  jar: Jar,
  url: string,
  init: { method?: string; form?: Record<string, string> } = {},
): Promise<Step> {
  const headers: Record<string, string> = { accept: 'text/html' };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  let body: string | undefined;
  if (init.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(init.form).toString();
  }
  const res = await fetch(url, {
    method: init.method ?? (body ? 'POST' : 'GET'),
    headers,
    body,
    redirect: 'manual',
  });
  jar.store(url, res);
  const location = res.headers.get('location');
  return {
    url,
    status: res.status,
    location: location ? new URL(location, url).href : undefined,
    body: await res.text(),
  };
}

function formOf(
  html: string,
  pageUrl: string,
): { action: string; fields: Record<string, string> } | undefined {
  const m = /<form[^>]*action="([^"]+)"[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  for (const input of m[2]!.matchAll(/<input[^>]*>/gi)) {
    const name = /name="([^"]+)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
    if (name) fields[name] = value.replace(/&amp;/g, '&');
  }
  return { action: new URL(m[1]!.replace(/&amp;/g, '&'), pageUrl).href, fields };
}

/**
 * From a URL at the provider (its authorization endpoint, usually podgate's redirect target), signs in
 * as `login` on the provider's login page, confirms its consent page, and follows redirects until the
 * browser would go to a URL starting with `stopAt` (podgate's callback), which is returned unvisited.
 */
export async function throughProvider(jar: Jar, url: string, login: string, stopAt: string): Promise<string> {
  let step = await request(jar, url);
  for (let i = 0; i < 20; i++) {
    if (step.location) {
      if (step.location.startsWith(stopAt)) return step.location;
      step = await request(jar, step.location);
      continue;
    }
    const form = step.status === 200 ? formOf(step.body, step.url) : undefined;
    if (!form)
      throw new Error(`provider stopped at ${step.url} with ${step.status}: ${step.body.slice(0, 300)}`);
    if ('login' in form.fields) Object.assign(form.fields, { login, password: 'any password' });
    step = await request(jar, form.action, { form: form.fields });
  }
  throw new Error('too many steps at the provider');
}
