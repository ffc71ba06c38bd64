import assert from 'node:assert/strict';
import { KubeClusterObjects } from '../../../src/cluster/access-objects.js';
import { KubeApiError, type KubeApi } from '../../../src/cluster/kube-api.js';

/** A KubeApi whose list answers like an API server that denies the manager's cluster-wide reads. */
function denying(status: number): KubeApi {
  return {
    list: async (_v: string, kind: string) => {
      throw new KubeApiError(
        status,
        status === 403 ? 'Forbidden' : 'InternalError',
        'denied',
        `list ${kind} (v1)`,
      );
    },
  } as unknown as KubeApi;
}

describe('cluster: the manager view of namespaces, pods and Services', () => {
  it('403 on a cluster-wide list names the optional RBAC file and the read that was refused', async () => {
    const view = new KubeClusterObjects(async () => denying(403));
    await assert.rejects(view.pods(), (err: Error & { status?: number }) => {
      assert.equal(err.status, 403);
      assert.match(err.message, /may not list pods cluster-wide/);
      assert.match(err.message, /kubectl apply -f k8s\/rbac-access-view\.yaml/);
      return true;
    });
  });

  it('other errors pass unchanged', async () => {
    const view = new KubeClusterObjects(async () => denying(500));
    await assert.rejects(view.services(), (err: Error) => /500 InternalError: denied/.test(err.message));
  });
});
