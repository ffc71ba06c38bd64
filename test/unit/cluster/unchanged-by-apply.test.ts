/**
 * "unchanged" is decided on podgate's own fields, not on resourceVersion alone: a mutating admission
 * webhook that stamps every write bumps resourceVersion on each apply.
 */
import assert from 'node:assert/strict';
import { unchangedByApply } from '../../../src/cluster/deploy.js';
import type { KubeObject } from '../../../src/cluster/kube-api.js';

const desired: KubeObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'podgate-openvpn', namespace: 'middleware', labels: { app: 'podgate' } },
  data: { 'server.conf': 'port 1194\n' },
};
const managed = (fields: unknown) => [{ manager: 'podgate', operation: 'Apply', fieldsV1: fields }];
const stored = (
  rv: string,
  extra: Record<string, unknown> = {},
  fields: unknown = { 'f:data': {} },
): KubeObject => ({
  ...structuredClone(desired),
  metadata: {
    ...structuredClone(desired.metadata),
    resourceVersion: rv,
    annotations: { 'webhook.example/stamp': rv },
    managedFields: managed(fields),
    uid: 'u1',
  },
  ...extra,
});

describe('unchangedByApply', () => {
  it('a webhook stamp (new resourceVersion, same podgate fields) is unchanged', () => {
    assert.equal(unchangedByApply(desired, stored('10'), stored('11')), true);
  });
  it('the same resourceVersion is unchanged', () => {
    assert.equal(unchangedByApply(desired, stored('10'), stored('10')), true);
  });
  it('a value podgate sends that changed is configured', () => {
    const before = stored('10', { data: { 'server.conf': 'port 1195\n' } });
    assert.equal(unchangedByApply(desired, before, stored('11')), false);
  });
  it('a field podgate stopped sending (its managed set changed) is configured', () => {
    const before = stored('10', {}, { 'f:data': {}, 'f:metadata': { 'f:labels': { 'f:old': {} } } });
    assert.equal(unchangedByApply(desired, before, stored('11')), false);
  });
});
