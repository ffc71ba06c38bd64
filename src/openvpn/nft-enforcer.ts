/**
 * The nftables edge of access enforcement: pipes scripts rendered by access/nft-script to `nft -f -`
 * (one transaction each: applied whole or not at all) through the project's exec helper. Owns the
 * `inet podgate` table and nothing else; never deletes it on stop (the table must outlive the agent: an
 * agent restart never opens anything).
 */
import { exec as realExec, type ExecOptions, type ExecResult } from '../lib/exec.js';
import type { CompileDelta } from '../access/compile.js';
import { renderDelta, renderTable, TABLE, type TableSpec } from '../access/nft-script.js';

export type ExecFn = (argv: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

/** What the access agent needs from an enforcer (the real one below; tests may record calls). */
export interface Enforcer {
  /** True when the table exists already (left by a previous run of the agent). */
  exists(): Promise<boolean>;
  /** Replaces the whole table atomically. */
  replace(spec: TableSpec): Promise<void>;
  /** Element (and, for new or removed rules, set) changes in one transaction. */
  applyDelta(delta: CompileDelta, ruleIds: readonly string[]): Promise<void>;
  /** Packets dropped by the policy since this enforcer started (survives table replacements). */
  dropped(): Promise<number>;
}

export interface NftEnforcerOptions {
  exec?: ExecFn;
  /** argv prefix, e.g. `['ip', 'netns', 'exec', NS]` for a scratch namespace (benchmarks, tests). */
  prefix?: readonly string[];
  nftBinary?: string;
}

export class NftEnforcer implements Enforcer {
  private readonly exec: ExecFn;
  private readonly argv: string[];
  /** Drops counted by tables this enforcer replaced (a replacement starts the counter at zero). */
  private droppedBefore = 0;

  constructor(o: NftEnforcerOptions = {}) {
    this.exec = o.exec ?? realExec;
    this.argv = [...(o.prefix ?? []), o.nftBinary ?? 'nft'];
  }

  async exists(): Promise<boolean> {
    const r = await this.exec([...this.argv, 'list', 'table', ...TABLE.split(' ')], {
      check: false,
      timeoutMs: 10_000,
    });
    return r.code === 0;
  }

  async replace(spec: TableSpec): Promise<void> {
    const before = await this.counter();
    await this.run(renderTable(spec));
    this.droppedBefore += before;
  }

  async applyDelta(delta: CompileDelta, ruleIds: readonly string[]): Promise<void> {
    const script = renderDelta(delta, ruleIds);
    if (script !== '') await this.run(script);
  }

  async dropped(): Promise<number> {
    return this.droppedBefore + (await this.counter());
  }

  /** Removes the table (tests and `podgate` uninstall paths only; the agent never calls it). */
  async remove(): Promise<void> {
    await this.exec([...this.argv, 'delete', 'table', ...TABLE.split(' ')], { check: false });
  }

  private async run(script: string): Promise<void> {
    await this.exec([...this.argv, '-f', '-'], { input: script, timeoutMs: 60_000 });
  }

  private async counter(): Promise<number> {
    const r = await this.exec([...this.argv, '-j', 'list', 'counter', ...TABLE.split(' '), 'dropped'], {
      check: false,
      timeoutMs: 10_000,
    });
    if (r.code !== 0) return 0;
    try {
      const j = JSON.parse(r.stdout) as { nftables: { counter?: { packets: number } }[] };
      return j.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
    } catch {
      return 0;
    }
  }
}
