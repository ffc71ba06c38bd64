/**
 * SSH host key checking, the way OpenSSH's StrictHostKeyChecking=accept-new behaves, with one difference:
 * a host whose known key does not match is refused even when a key of another type is offered.
 * Sources: a pinned fingerprint from config (`gateway.hostKeyFingerprints`) wins over known_hosts.
 * Supports plain, comma-separated, wildcard (`*`, `?`), negated (`!`) and hashed (`|1|salt|hash`) host
 * patterns, and the `@revoked` marker; `@cert-authority` lines are ignored (ssh2 does not do host certs).
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  marker: '' | '@revoked' | '@cert-authority';
  patterns: string;
  keyType: string;
  keyBase64: string;
}

export type HostKeyVerdict = 'known' | 'unknown' | 'changed' | 'revoked';

export interface HostKeyDecision {
  verdict: HostKeyVerdict;
  /** Fingerprint of the key the server offered (`SHA256:...`, as `ssh-keygen -l` prints it). */
  fingerprint: string;
  keyType: string;
  /** Where the expected key came from, for the error message. */
  source?: string;
}

/** `SHA256:<base64 without padding>` of the SSH wire-format public key. */
export function hostKeyFingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/** The algorithm name at the start of an SSH wire-format key (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...). */
export function wireKeyType(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString('latin1');
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = '';
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority')
      marker = fields.shift() as KnownHostEntry['marker'];
    const [patterns, keyType, keyBase64] = fields;
    if (!patterns || !keyType || !keyBase64) continue;
    out.push({ marker, patterns, keyType, keyBase64 });
  }
  return out;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
    'i',
  );
  return re.test(name);
}

/** True when `name` (`host` or `[host]:port`) matches the entry's host field. */
export function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) matched = true;
  }
  return matched;
}

/**
 * Decides about the key a server offered. `pinned` (a fingerprint) wins; otherwise known_hosts entries for
 * `name`: a matching key is known, any other key for a host we know is `changed`, no entry is `unknown`.
 */
export function decideHostKey(
  name: string,
  key: Buffer,
  entries: readonly KnownHostEntry[],
  pinned?: string,
): HostKeyDecision {
  const fingerprint = hostKeyFingerprint(key);
  const keyType = wireKeyType(key);
  const b64 = key.toString('base64');
  const forHost = entries.filter((e) => e.marker !== '@cert-authority' && hostMatches(e.patterns, name));
  if (forHost.some((e) => e.marker === '@revoked' && e.keyBase64 === b64))
    return { verdict: 'revoked', fingerprint, keyType, source: 'known_hosts' };
  if (pinned !== undefined) {
    return {
      verdict: pinned === fingerprint ? 'known' : 'changed',
      fingerprint,
      keyType,
      source: `pinned fingerprint ${pinned}`,
    };
  }
  const plain = forHost.filter((e) => e.marker === '');
  if (plain.length === 0) return { verdict: 'unknown', fingerprint, keyType };
  if (plain.some((e) => e.keyBase64 === b64))
    return { verdict: 'known', fingerprint, keyType, source: 'known_hosts' };
  return { verdict: 'changed', fingerprint, keyType, source: 'known_hosts' };
}

/** ssh2 `algorithms.serverHostKey` names that produce a key of this known_hosts type. */
export function algorithmsForKeyType(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [keyType];
}

export interface HostKeyPolicyOptions {
  knownHostsFile: string;
  /** config `gateway.hostKeyFingerprints`: "host[:port]" -> "SHA256:..." */
  pinned?: Record<string, string>;
  /** Accept (and, unless `record` is false, record) a key for a host that has none yet. */
  acceptNew?: boolean;
  /** Write accepted new keys to known_hosts (false for --dry-run). Default true. */
  record?: boolean;
}

/** One connection's host key check; read `decision` after the handshake to explain a refusal. */
export class HostKeyCheck {
  decision: HostKeyDecision | undefined;
  /** What the verifier answered (undefined before the handshake got that far). */
  accepted: boolean | undefined;
  private readonly entries: KnownHostEntry[];
  readonly pinned: string | undefined;

  constructor(
    private readonly options: HostKeyPolicyOptions,
    readonly host: string,
    readonly port: number,
    readonly name: string,
  ) {
    this.entries = existsSync(options.knownHostsFile)
      ? parseKnownHosts(readFileSync(options.knownHostsFile, 'utf8'))
      : [];
    const p = options.pinned ?? {};
    this.pinned = p[`${host}:${port}`] ?? p[name] ?? (port === 22 ? p[host] : undefined);
  }

  /**
   * Host key algorithms to offer: when we know this host's key types, only those (so a server that also has
   * an ed25519 key cannot look "changed" just because ssh2 prefers it); otherwise ssh2's defaults.
   */
  serverHostKeyAlgorithms(): string[] | undefined {
    if (this.pinned !== undefined) return undefined;
    const types = this.entries
      .filter((e) => e.marker === '' && hostMatches(e.patterns, this.name))
      .map((e) => e.keyType);
    return types.length === 0 ? undefined : [...new Set(types.flatMap(algorithmsForKeyType))];
  }

  /** The ssh2 `hostVerifier` (synchronous form). */
  verify = (key: Buffer): boolean => {
    this.accepted = this.decide(key);
    return this.accepted;
  };

  private decide(key: Buffer): boolean {
    const d = decideHostKey(this.name, key, this.entries, this.pinned);
    this.decision = d;
    if (d.verdict === 'known') return true;
    if (d.verdict === 'unknown' && this.options.acceptNew) {
      if (this.options.record !== false) {
        mkdirSync(dirname(this.options.knownHostsFile), { recursive: true });
        appendFileSync(this.options.knownHostsFile, `${this.name} ${d.keyType} ${key.toString('base64')}\n`, {
          mode: 0o600,
        });
      }
      return true;
    }
    return false;
  }
}
