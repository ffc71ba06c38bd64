import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const loggerModule = fileURLToPath(new URL('../../../src/lib/logger.js', import.meta.url));

/** Runs the real logger in a child process (it writes to fd 2) and returns the JSON lines it wrote. */
function logInChild(script: string): { raw: string; records: Record<string, unknown>[] } {
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `import { logger } from ${JSON.stringify(loggerModule)};\n${script}`],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('{'));
  return { raw: r.stderr, records: lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

// The PEM armour is assembled here so no private-key block stands in the source; the bodies are not keys.
const PEM_LABEL = ['PRIVATE', 'KEY'].join(' ');
const pemBlock = (body: string, nl = '\n') =>
  `-----BEGIN ${PEM_LABEL}-----${nl}${body}${nl}-----END ${PEM_LABEL}-----`;

const MSG_WITH_KEY = `profile: <key>\n${pemBlock('MIIEmsg-key-body')}\n</key>`;

describe('logger: secrets are redacted at any depth', () => {
  const secrets = {
    password: 'S3cret-pw-nested-cause',
    keyPem: 'KEYPEM-deep-inside-details',
    token: 'pg_tok_abcdef0123456789',
    auth: 'Bearer sekrit-bearer-value',
    mgmt: 'management-pw-in-error-prop',
    pemBody: 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7',
  };

  it('a secret planted in a nested error cause, error properties and deep details never reaches the log', () => {
    const { raw, records } = logInChild(`
      const inner = new Error('ssh failed');
      inner.password = ${JSON.stringify(secrets.password)};
      inner.context = { profile: { keyPem: ${JSON.stringify(secrets.keyPem)} } };
      const outer = new Error(${JSON.stringify(`issue failed: key was ${pemBlock(secrets.pemBody)}`)}, { cause: inner });
      outer.managementPassword = ${JSON.stringify(secrets.mgmt)};
      logger.child({ module: 'test' }).error(
        { err: outer, request: { headers: { authorization: ${JSON.stringify(secrets.auth)} } },
          a: { b: { c: { d: { apiToken: ${JSON.stringify(secrets.token)} } } } }, serial: '0A1B' },
        'boom',
      );
    `);
    for (const [name, value] of Object.entries(secrets)) {
      assert.ok(!raw.includes(value), `${name} leaked into the log: ${raw}`);
    }
    assert.equal(records.length, 1);
    const rec = records[0] as {
      serial: string;
      module: string;
      err: { message: string; managementPassword: string; cause: { message: string; password: string } };
      a: { b: { c: { d: { apiToken: string } } } };
    };
    // What is not secret stays readable: serial, module, messages, the shape of the error chain.
    assert.equal(rec.serial, '0A1B');
    assert.equal(rec.module, 'test');
    assert.match(rec.err.message, /^issue failed: key was \[Redacted\]/);
    assert.equal(rec.err.managementPassword, '[Redacted]');
    assert.equal(rec.err.cause.message, 'ssh failed');
    assert.equal(rec.err.cause.password, '[Redacted]');
    assert.equal(rec.a.b.c.d.apiToken, '[Redacted]');
  });

  it('child bindings and circular objects are handled', () => {
    const { raw, records } = logInChild(`
      const loop = { name: 'x' };
      loop.self = loop;
      logger.child({ module: 'm', secret: 'binding-secret-value' }).warn({ loop }, 'cyclic');
      logger.info(${JSON.stringify(MSG_WITH_KEY)});
    `);
    assert.ok(!raw.includes('binding-secret-value'), raw);
    assert.ok(!raw.includes('MIIEmsg-key-body'), raw);
    assert.equal((records[1] as { msg: string }).msg, 'profile: <key>\n[Redacted]\n</key>');
    assert.deepEqual((records[0] as { loop: unknown }).loop, { name: 'x', self: '[Circular]' });
  });
});
