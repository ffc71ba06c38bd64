/**
 * The kubeconfig parser's fast path (src/cluster/kubeconfig-yaml.ts) reads what the yaml package reads,
 * or declines (NOT_SIMPLE) and the yaml package parses it: never a third reading.
 */
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { NOT_SIMPLE, parseBlockYaml, parseKubeconfigText } from '../../../src/cluster/kubeconfig-yaml.js';

const KUBECTL = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: TFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0Q2c9PQ==
    server: https://127.0.0.1:6443
  name: kind-kind
- cluster:
    insecure-skip-tls-verify: true
    server: "https://[fd00::1]:443"
    tls-server-name: 'api.it''s'
  name: other # a comment
contexts:
- context:
    cluster: kind-kind
    namespace: default
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences:
users:
- name: kind-kind
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
-   name: spaced
    user:
      token: abc#not-a-comment
      tokenFile: /var/run/token
    extensions:
      - name: x
        extension:
          n: 12
          f: 1.5
          nul: ~
          off: False
          list:
            - a
            -
            - "b\\tc"
`;

const SAME: [string, string][] = [
  ['kubectl config view --raw', KUBECTL],
  ['CRLF line ends, comments, blank lines', '# head\r\napiVersion: v1\r\n\r\nkind: Config   # trailing\r\n'],
  ['an empty file', ''],
  ['a nested mapping under a sequence item', '- a: 1\n  b:\n    c: d\n- e\n'],
];
const DECLINED: [string, string][] = [
  ['flow collections', 'clusters: [{ name: c }]\n'],
  ['anchors and aliases', 'a: &x 1\nb: *x\n'],
  ['a block scalar', 'a: |\n  text\n'],
  ['a multi-line plain scalar', 'a: one\n  two\n'],
  ['a document marker', '---\na: 1\n'],
  ['tabs in the indentation', 'a:\n\tb: 1\n'],
  ['a duplicate key', 'a: 1\na: 2\n'],
  ['a tag', 'a: !!str 1\n'],
  ['a YAML-only escape', 'a: "\\x41"\n'],
  ['a hexadecimal number', 'a: 0x1F\n'],
  ['a key with a space', 'a b: 1\n'],
  ['a mapping on one line', 'a: b: c\n'],
  ['an odd indentation', 'a:\n    b: 1\n  c: 2\n'],
];

describe('cluster/kubeconfig-yaml', () => {
  for (const [name, text] of SAME) {
    it(`reads as the yaml package does: ${name}`, () => {
      const fast = parseBlockYaml(text);
      assert.notEqual(fast, NOT_SIMPLE);
      assert.deepEqual(fast, parse(text));
    });
  }
  for (const [name, text] of DECLINED) {
    it(`declines, and parseKubeconfigText gives the yaml package's reading: ${name}`, () => {
      assert.equal(parseBlockYaml(text), NOT_SIMPLE);
      let expected: unknown;
      try {
        expected = parse(text);
      } catch (err) {
        assert.throws(() => parseKubeconfigText(text), { message: (err as Error).message });
        return;
      }
      assert.deepEqual(parseKubeconfigText(text), expected);
    });
  }
  it('JSON kubeconfigs as JSON', () => {
    const json = JSON.stringify({ clusters: [{ name: 'c', cluster: { server: 'https://h' } }] });
    assert.deepEqual(parseKubeconfigText(json), JSON.parse(json));
  });
});
