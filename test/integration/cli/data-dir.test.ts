import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest } from '../../../src/lib/errors.js';
import { secureDataDir } from '../../../src/services/data-dir.js';
import { runCli, tempDir } from '../../helpers/cli.js';
import { serveOnce } from '../../helpers/serve.js';

const modeOf = (dir: string): number => statSync(dir).mode & 0o7777;

describe('CLI: a data dir with mode 0777 is fixed and reported by init, serve and doctor', function () {
  this.timeout(120_000);
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir();
  });
  afterEach(() => t.cleanup());

  it('init: 0777 becomes 0700 and stderr says so', async () => {
    const dir = join(t.dir, 'data');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const r = await runCli(['init', '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /data dir .* had mode 0777 .*set to 0700/);
    assert.equal(modeOf(dir), 0o700);
  });

  it('doctor and serve: a dir loosened after init is fixed again and reported', async () => {
    const dir = join(t.dir, 'data');
    assert.equal((await runCli(['init', '--data-dir', dir])).code, 0);
    assert.equal(modeOf(dir), 0o700);
    chmodSync(dir, 0o777);
    const d = await runCli(['doctor', '--json', '--data-dir', dir]);
    const findings = JSON.parse(d.stdout) as { level: string; check: string; detail: string }[];
    const f = findings.find((x) => x.check === 'data dir');
    assert.equal(f?.level, 'warn', d.stdout);
    assert.match(f!.detail, /had mode 0777/);
    assert.equal(modeOf(dir), 0o700);
    const clean = JSON.parse(
      (await runCli(['doctor', '--json', '--data-dir', dir])).stdout,
    ) as typeof findings;
    assert.equal(clean.find((x) => x.check === 'data dir')?.level, 'ok');
    chmodSync(dir, 0o777);
    const served = await serveOnce({ dataDir: dir });
    assert.equal(served.started, true, served.out);
    assert.match(served.out, /had mode 0777 .*set to 0700/);
    assert.equal(modeOf(dir), 0o700);
  });

  it('refused (400, dataDir) when a world-writable dir cannot be changed; group-only gets a note', () => {
    const dir = join(t.dir, 'shared');
    mkdirSync(dir);
    const denied = () => {
      throw Object.assign(new Error('EPERM'), { code: 'EPERM' });
    };
    chmodSync(dir, 0o777);
    assert.throws(
      () => secureDataDir(dir, denied as never),
      (e: unknown) => e instanceof BadRequest && e.field === 'dataDir' && /chmod 700/.test(e.message),
    );
    chmodSync(dir, 0o2770);
    assert.match(secureDataDir(dir, denied as never).note ?? '', /has mode 2770 and cannot be changed/);
    assert.deepEqual(secureDataDir(dir), {
      note: `data dir ${dir} had mode 2770 (others could read or change the CA and database); set to 2700`,
    });
    assert.deepEqual(secureDataDir(dir), {});
  });
});
