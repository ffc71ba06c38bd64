/**
 * The `client-config-dir` openvpn reads at every connect (with `ccd-exclusive`: a device without a file
 * is refused). One file per allowed device, named by its common name, holding its stable address. The
 * files persist: with the agent down, openvpn keeps admitting exactly the devices of the last good
 * bundle, with their addresses.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { NAME_PATTERN } from '../lib/names.js';
import { renderClientConfigFile, type ClientAddress6 } from '../profiles/client-config-dir.js';
import type { AccessClient } from '../access/types.js';

export interface CcdSyncResult {
  /** Devices that got a file (new ones). */
  added: string[];
  /** Devices whose file was removed: refused at their next connect. */
  removed: string[];
  /** Devices whose address changed: their live session still has the old one. */
  readdressed: string[];
}

export class ClientConfigDir {
  /**
   * `address6` (dual stack): the device's IPv6 address for its IPv4 one (`TunnelAddresses.ipv6For`);
   * without it the files give IPv4 only.
   */
  constructor(
    readonly dir: string,
    private readonly netmask: string,
    private readonly address6?: (ipv4: string) => ClientAddress6 | undefined,
  ) {}

  /** Makes the directory hold exactly one file per client; files of other names are left alone. */
  sync(clients: readonly AccessClient[]): CcdSyncResult {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    chmodSync(this.dir, 0o755); // openvpn reads it after dropping privileges
    const present = new Map<string, string>();
    for (const f of readdirSync(this.dir)) {
      if (!NAME_PATTERN.test(f)) continue; // temp files, anything not ours
      try {
        present.set(f, readFileSync(join(this.dir, f), 'utf8'));
      } catch {
        /* vanished meanwhile */
      }
    }
    const result: CcdSyncResult = { added: [], removed: [], readdressed: [] };
    const wanted = new Set<string>();
    for (const c of clients) {
      if (!NAME_PATTERN.test(c.commonName)) continue;
      wanted.add(c.commonName);
      const text = renderClientConfigFile(c.address, this.netmask, this.address6?.(c.address));
      const old = present.get(c.commonName);
      if (old === text) continue;
      writeFileAtomic(join(this.dir, c.commonName), text, 0o644);
      if (old === undefined) result.added.push(c.commonName);
      else result.readdressed.push(c.commonName);
    }
    for (const f of present.keys()) {
      if (wanted.has(f)) continue;
      rmSync(join(this.dir, f), { force: true });
      result.removed.push(f);
    }
    return result;
  }
}
