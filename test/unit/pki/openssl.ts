import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, type ExecResult } from '../../../src/lib/exec.js';

/**
 * A temp directory plus the openssl CLI: the second implementation the pki tests check podgate against.
 * Call `cleanup()` in `after` so the directory goes even when a test fails.
 */
export class OpensslWorkspace {
  readonly dir = mkdtempSync(join(tmpdir(), 'podgate-pki-'));

  /** Writes `content` to `name` in the workspace and returns its path. */
  file(name: string, content: string | Buffer): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Runs openssl with argv (never a shell string); returns code and output without throwing. */
  run(args: readonly string[], input?: string): Promise<ExecResult> {
    return exec(['openssl', ...args], {
      check: false,
      cwd: this.dir,
      ...(input === undefined ? {} : { input }),
    });
  }

  /** Runs openssl and returns stdout; throws with stderr when it exits non-zero. */
  async ok(args: readonly string[], input?: string): Promise<string> {
    const r = await this.run(args, input);
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
