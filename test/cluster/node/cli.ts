/**
 * The test node's command line (also reached through `npm run test-cluster -- up --with-node`):
 *
 *   node dist/test/cluster/node/cli.js images        build (or find cached) the image archives (all,
 *                                                    the optional PostgreSQL one included)
 *   node dist/test/cluster/node/cli.js up            node + CoreDNS against the running control plane
 *   node dist/test/cluster/node/cli.js down          remove everything the node made
 *   node dist/test/cluster/node/cli.js status
 *
 * `up` reads the control plane's admin kubeconfig from KUBECONFIG.
 */
import { fileURLToPath } from 'node:url';
import { acquireNodeLock, nodeDown, nodeHeldBy, nodeStatus, releaseNodeLock } from './node.js';
import { buildNodeImages, startNodeWithDns } from './with-node.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'images': {
      const t0 = Date.now();
      const set = await buildNodeImages(REPO, { postgres: true });
      for (const [name, img] of Object.entries(set))
        console.log(`${name}\t${img.ref}\t${img.cached ? 'cached' : 'built'}\t${img.archive}`);
      console.log(`images ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return 0;
    }
    case 'up': {
      const kubeconfig = process.env.KUBECONFIG;
      if (!kubeconfig) {
        console.error(
          'test node: set KUBECONFIG to the control plane admin kubeconfig (npm run test-cluster -- up)',
        );
        return 2;
      }
      acquireNodeLock('`cli.js up`', true);
      const t0 = Date.now();
      const node = await startNodeWithDns(REPO, kubeconfig);
      console.log(
        `node ${node.nodeIp} Ready with CoreDNS in ${((Date.now() - t0) / 1000).toFixed(1)} s (netns ${node.netns})`,
      );
      return 0;
    }
    case 'down': {
      const busy = nodeHeldBy();
      if (busy && !busy.untilDown) {
        console.error(`test node: in use by ${busy.holder} (pid ${busy.pid}); not removed`);
        return 1;
      }
      const problems = await nodeDown();
      releaseNodeLock(true);
      for (const p of problems) console.error(`not removed: ${p}`);
      return problems.length ? 1 : 0;
    }
    case 'status':
      console.log(JSON.stringify(nodeStatus(), null, 2));
      return 0;
    default:
      console.error('usage: cli.js images | up | down | status');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
