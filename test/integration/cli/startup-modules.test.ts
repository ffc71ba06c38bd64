/**
 * What the common commands load. `--help`, `cert list`, `cert revoke` and `user list` (no cluster
 * configured) must not load the Kubernetes client, express (or the rest of the web stack), ssh2 or
 * openid-client: they cost start-up time every CLI call would pay. Checked two ways, both of which fail
 * when someone adds a static import on the path:
 * - at run time, for the bundle that ships (dist/bundle/podgate.js) and for the tsc output the other
 *   suites run, with a preload that records every module the process resolves or requires;
 * - in the bundle's esbuild metafile: nothing reachable from the entry by static imports holds those
 *   packages (bundled or external).
 * A control run loads express and the Kubernetes client under the same preload and expects to see them,
 * so a trace that records nothing cannot pass.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE, CLI_TSC, tempDir } from '../../helpers/cli.js';
import { HEAVY, heavyIn, traced } from '../../helpers/traced-cli.js';

describe('CLI start-up: what the common commands load', function () {
  this.timeout(120_000);
  const t = tempDir();
  const data = join(t.dir, 'data');
  const env = { PODGATE_VPN_ENDPOINTS: '172.18.12.21', PODGATE_ADMIN_PASSWORD_FILE: join(t.dir, 'admin.pw') };

  before(async () => {
    writeFileSync(join(t.dir, 'admin.pw'), 'admin-password-for-tests\n');
    const init = await traced([BUNDLE, '--data-dir', data, 'init'], t.dir, env);
    assert.equal(init.code, 0, init.stderr);
    for (const n of ['one.laptop', 'two.laptop']) {
      const r = await traced(
        [
          BUNDLE,
          '--data-dir',
          data,
          'cert',
          'issue',
          n,
          '--owner',
          'admin',
          '--out',
          join(t.dir, `${n}.ovpn`),
        ],
        t.dir,
        env,
      );
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(() => t.cleanup());

  it('the trace sees express and the Kubernetes client when they are loaded (control)', async () => {
    const r = await traced(
      ['--input-type=module', '-e', "await import('express'); await import('@kubernetes/client-node');"],
      t.dir,
    );
    assert.equal(r.code, 0, r.stderr);
    const seen = heavyIn(r.modules).join('\n');
    assert.match(seen, /node_modules\/express\//);
    assert.match(seen, /node_modules\/@kubernetes\/client-node\//);
  });

  const cases: { name: string; args: string[] }[] = [
    { name: '--help', args: ['--help'] },
    { name: 'cert list', args: ['cert', 'list'] },
    { name: 'cert revoke', args: ['cert', 'revoke', 'one.laptop', '--reason', 'keyCompromise'] },
    { name: 'user list', args: ['user', 'list'] },
  ];
  for (const [label, cli] of [
    ['bundle', BUNDLE],
    ['tsc output', CLI_TSC],
  ] as const) {
    for (const c of cases) {
      it(`${label}: ${c.name} loads none of ${HEAVY.join(', ')}`, async () => {
        // revoke twice (once per build) needs two certificates; the second run revokes the other one
        const args =
          c.name === 'cert revoke' && label !== 'bundle' ? ['cert', 'revoke', 'two.laptop'] : c.args;
        const r = await traced([cli, '--data-dir', data, ...args], t.dir, env);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.modules.length > 0, 'the trace recorded nothing');
        assert.deepEqual(heavyIn(r.modules), []);
      });
    }
  }

  // Loaded on first use only (src/pki/cert-builder.ts, src/lib/logger.ts, src/lib/yaml.ts): a list or a
  // revoke builds no certificate, writes no log record at its default level and, without podgate.yaml,
  // reads no YAML.
  const ON_DEMAND = ['node-forge', 'pino', 'yaml'];
  const onDemandIn = (ids: readonly string[]): string[] =>
    [
      ...new Set(
        ids.flatMap((id) =>
          // from node_modules, or (yaml) the bundle's own file of it (chunks/yaml.cjs)
          ON_DEMAND.filter((p) => id.includes(`/node_modules/${p}/`) || id.includes(`/bundle/chunks/${p}.`)),
        ),
      ),
    ].sort();

  it('cert issue loads node-forge, a config file loads yaml, a log record loads pino (control)', async () => {
    const config = join(t.dir, 'podgate.yaml');
    writeFileSync(config, 'logLevel: info\n');
    const r = await traced(
      [
        BUNDLE,
        '--config',
        config,
        '--data-dir',
        data,
        'cert',
        'issue',
        'three.laptop',
        '--owner',
        'admin',
        '--out',
        join(t.dir, 'three.ovpn'),
      ],
      t.dir,
      { ...env, PODGATE_LOG_LEVEL: 'debug' },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(onDemandIn(r.modules), ['node-forge', 'pino', 'yaml']);
  });

  for (const [label, cli] of [
    ['bundle', BUNDLE],
    ['tsc output', CLI_TSC],
  ] as const) {
    for (const c of [
      { name: 'cert list', args: ['cert', 'list'] },
      { name: 'user list', args: ['user', 'list'] },
      { name: 'cert revoke', args: ['cert', 'revoke', label === 'bundle' ? 'four.laptop' : 'five.laptop'] },
    ]) {
      it(`${label}: ${c.name} loads none of ${ON_DEMAND.join(', ')}`, async () => {
        if (c.name === 'cert revoke') {
          const name = c.args[2]!;
          const out = join(t.dir, `${name}.ovpn`);
          const issue = ['cert', 'issue', name, '--owner', 'admin', '--out', out];
          const issued = await traced([cli, '--data-dir', data, ...issue], t.dir, env);
          assert.equal(issued.code, 0, issued.stderr);
        }
        const r = await traced([cli, '--data-dir', data, ...c.args], t.dir, env);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.modules.length > 0, 'the trace recorded nothing');
        assert.deepEqual(onDemandIn(r.modules), []);
      });
    }
  }

  // The bundle carries client.ovpn and server.conf precompiled (scripts/bundle.mjs): it renders them
  // with Handlebars' runtime only, to the same text the tsc build compiles them to.
  const compilerIn = (ids: readonly string[]) => ids.filter((id) => id.includes('/handlebars/compiler/'));
  const runtimeIn = (ids: readonly string[]) => ids.filter((id) => id.includes('/handlebars.runtime.js'));
  it('server config: the bundle renders the precompiled template, not compiling, to the same text', async () => {
    const args = ['--data-dir', data, 'server', 'config'];
    const bundle = await traced([BUNDLE, ...args], t.dir, env);
    const tsc = await traced([CLI_TSC, ...args], t.dir, env);
    assert.equal(bundle.code, 0, bundle.stderr);
    assert.equal(tsc.code, 0, tsc.stderr);
    assert.match(bundle.stdout, /^crl-verify /m);
    assert.equal(bundle.stdout, tsc.stdout);
    assert.deepEqual(compilerIn(bundle.modules), []);
    assert.notDeepEqual(runtimeIn(bundle.modules), []);
    assert.notDeepEqual(compilerIn(tsc.modules), [], 'control: the tsc build compiles the template');
  });

  it('cert issue: the bundle renders the profile from the precompiled template', async () => {
    const out = join(t.dir, 'seven.ovpn');
    const r = await traced(
      [BUNDLE, '--data-dir', data, 'cert', 'issue', 'seven.laptop', '--owner', 'admin', '--out', out],
      t.dir,
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(out, 'utf8'), /^<cert>$/m);
    assert.deepEqual(compilerIn(r.modules), []);
    assert.notDeepEqual(runtimeIn(r.modules), []);
  });

  it('bundle metafile: nothing reachable from the entry by static imports imports a heavy package', () => {
    // One output file holds all of podgate's code (scripts/bundle.mjs); what runs at start is what the
    // entry reaches by static imports (esbuild initialises a dynamically imported module only when the
    // import() runs). Walks the metafile's input graph along static imports from src/cli.ts.
    const meta = JSON.parse(readFileSync(join(BUNDLE, '..', 'meta.json'), 'utf8')) as {
      inputs: Record<string, { imports: { path: string; kind: string; external?: boolean }[] }>;
    };
    const entry = Object.keys(meta.inputs).find((k) => k.endsWith('src/cli.ts'));
    assert.ok(entry, 'the metafile has no src/cli.ts input');
    const seen = new Set<string>();
    const offending: string[] = [];
    const walk = (input: string) => {
      if (seen.has(input)) return;
      seen.add(input);
      offending.push(...heavyIn([`/${input}`]));
      for (const imp of meta.inputs[input]!.imports) {
        if (imp.kind !== 'import-statement' && imp.kind !== 'require-call') continue;
        if (imp.external) {
          if (HEAVY.some((p) => imp.path === p || imp.path.startsWith(`${p}/`)))
            offending.push(`${input} -> ${imp.path}`);
        } else walk(imp.path);
      }
    };
    walk(entry);
    assert.ok(seen.size > 10, `the walk saw only ${seen.size} inputs`);
    // control: the web app is in the same file, reached only through a dynamic import
    assert.ok(Object.keys(meta.inputs).some((k) => k.endsWith('src/web/app.ts')));
    assert.ok(![...seen].some((k) => k.endsWith('src/web/app.ts')), 'src/web/app.ts is reached statically');
    assert.deepEqual(offending, []);
  });
});
