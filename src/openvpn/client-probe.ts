import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface ProbeResult {
  /** The handshake completed (openvpn printed "Initialization Sequence Completed"). */
  connected: boolean;
  /** `route` entries of the server's PUSH_REPLY, as CIDRs. */
  routes: string[];
  /** The tunnel address the server pushed. */
  ifconfig: string | undefined;
  /** Why it did not connect, from openvpn's log (or a timeout). */
  error: string | undefined;
  log: string[];
}

function maskBits(mask: string): number {
  return mask.split('.').reduce((n, o) => n + (Number(o) >>> 0).toString(2).replace(/0/g, '').length, 0);
}

/** The routes and address of a PUSH_REPLY line. */
export function parsePushReply(line: string): { routes: string[]; ifconfig: string | undefined } {
  const body = /PUSH_REPLY,(.*?)'?(\s*\(status=\d+\))?$/.exec(line)?.[1] ?? '';
  const routes: string[] = [];
  let ifconfig: string | undefined;
  for (const opt of body.split(',')) {
    const p = opt.trim().split(/\s+/);
    if (p[0] === 'route' && p[1]) routes.push(`${p[1]}/${p[2] ? maskBits(p[2]) : 32}`);
    if (p[0] === 'ifconfig' && p[1]) ifconfig = p[1];
  }
  return { routes, ifconfig };
}

const FAILURE =
  /AUTH_FAILED|certificate revoked|CRL CHECK FAILED|VERIFY ERROR|TLS Error|TLS handshake failed|Connection refused|Cannot resolve|Exiting due to fatal error|Options error/i;

/**
 * Connects with a profile without touching this machine's network: `--dev null` plus
 * `--ifconfig-noexec --route-noexec`, so no interface, address or route is made; it only proves the
 * server answers, accepts the certificate and what it pushes. Stops at the first success or failure,
 * or after `timeoutMs`. The profile is written to a private temp dir that is removed afterwards.
 */
export async function probeProfile(
  profile: string,
  o: { openvpn?: string; timeoutMs?: number } = {},
): Promise<ProbeResult> {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-probe-'));
  const file = join(dir, 'client.ovpn');
  writeFileSync(file, profile, { mode: 0o600 });
  const log: string[] = [];
  const result: ProbeResult = { connected: false, routes: [], ifconfig: undefined, error: undefined, log };
  try {
    const child = spawn(
      o.openvpn ?? 'openvpn',
      [
        '--config',
        file,
        '--dev',
        'null',
        '--ifconfig-noexec',
        '--route-noexec',
        '--connect-retry-max',
        '1',
        '--resolv-retry',
        '0',
        '--verb',
        '4',
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        result.error ??= `no answer within ${Math.round((o.timeoutMs ?? 15_000) / 1000)} s`;
        child.kill('SIGTERM');
      }, o.timeoutMs ?? 15_000);
      const onLine = (line: string): void => {
        log.push(line);
        if (line.includes('PUSH_REPLY,')) Object.assign(result, parsePushReply(line));
        if (line.includes('Initialization Sequence Completed')) {
          result.connected = true;
          child.kill('SIGTERM');
        } else if (!result.connected && !result.error && FAILURE.test(line)) {
          result.error = line.replace(/^\S+ \S+ /, '');
          child.kill('SIGTERM');
        }
      };
      createInterface({ input: child.stdout }).on('line', onLine);
      createInterface({ input: child.stderr }).on('line', onLine);
      child.on('error', (err) => {
        result.error = `openvpn could not be started: ${err.message}`;
      });
      child.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}
