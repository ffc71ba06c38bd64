/**
 * Container images for the test node, built here because no registry can be reached: buildah (vfs storage,
 * chroot isolation, `--pull=never`) builds them into a throw-away storage dir and pushes each to a
 * docker-archive file that containerd imports (`ctr -n k8s.io images import`).
 *
 * - base: `node:20-bookworm-slim` made locally (a `debootstrap --variant=minbase bookworm` rootfs, this
 *   machine's Node.js 20 runtime, npm and headers, and the `node` user of the official image), so the
 *   project's Dockerfile builds unchanged here and on a normal machine;
 * - podgate: the project's own Dockerfile on that base;
 * - coredns: scratch + the CoreDNS binary built from its Go module (test/cluster/coredns);
 * - busybox: scratch + Debian's busybox-static, the workload of the test pods (`httpd`, `sh`), plus
 *   Debian's iperf3 with the libraries it links (the throughput figure);
 * - postgres (only when asked for: the suites that run the manager on PostgreSQL): the local Debian base
 *   with Debian's `postgresql` package installed by apt-get inside the build, Node.js removed, squashed
 *   into one layer; the server user `postgres` has the fixed uid POSTGRES_UID and the binaries are on
 *   PATH (`initdb`, `postgres`), so a pod runs it as that user with a command of its own.
 *
 * Archives are cached outside the work tree under `<cache>/images/<name>-<hash>.tar`, keyed by a hash of
 * everything that goes into them, so a rerun with nothing changed builds nothing.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  realpathSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec } from '../../../src/lib/exec.js';
import { cacheRoot, say } from '../node/paths.js';

/** Bump when a recipe below changes in a way the hashed inputs do not show. */
const RECIPE = 'v1';
export const BASE_REF = 'docker.io/library/node:20-bookworm-slim';
/** The container image tag the official node image's `node` user has; the Dockerfile chowns to it. */
const NODE_UID = 1000;

export interface BuiltImage {
  /** The image reference containerd knows it by after import. */
  ref: string;
  archive: string;
  /** True when the archive came from the cache. */
  cached: boolean;
}

export interface ImageSet {
  podgate: BuiltImage;
  coredns: BuiltImage;
  busybox: BuiltImage;
  /** The pod sandbox image (containerd's `sandbox_image`): pause.c compiled statically. */
  pause: BuiltImage;
  /** Debian's PostgreSQL server, when `buildImages` was asked for it. */
  postgres?: BuiltImage;
}

export interface ImageOptions {
  /** Also build (or find) the PostgreSQL image (minutes the first time: apt-get inside buildah). */
  postgres?: boolean;
}

/** The uid (and gid) of `postgres` in the PostgreSQL image: a pod's `runAsUser`. */
export const POSTGRES_UID = 999;

/**
 * Run as root inside the build: the user first (fixed uid; the package's postinst keeps an existing
 * system user), no default cluster (the pod makes its own with initdb) and no service start in a build
 * (policy-rc.d), then the package, and what the base carried only for the podgate image goes.
 */
const POSTGRES_RECIPE = [
  'set -e',
  `groupadd --system --gid ${POSTGRES_UID} postgres`,
  `useradd --system --uid ${POSTGRES_UID} --gid postgres --home-dir /var/lib/postgresql --shell /bin/sh postgres`,
  'mkdir -p /etc/postgresql-common',
  "echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf",
  "printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d",
  'apt-get update',
  'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql',
  'ln -s "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)" /usr/local/lib/postgresql-bin',
  // apt's caches, documentation and message translations: a third of the image, none of it used
  'rm -rf /usr/sbin/policy-rc.d /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin',
  'rm -rf /usr/share/doc /usr/share/man /usr/share/locale',
  'rm -rf /usr/local/bin/node /usr/local/bin/npm /usr/local/bin/npx /usr/local/lib/node_modules /usr/local/include/node',
].join('\n');

function imagesDir(): string {
  const dir = join(cacheRoot(), 'images');
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function fileSha(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Hash of every regular file under `paths` (relative names + contents), in a stable order. */
function treeHash(root: string, paths: readonly string[], h = createHash('sha256')): string {
  const walk = (p: string): void => {
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const e of readdirSync(p).sort()) {
        if (e === 'node_modules' || e === 'dist') continue;
        walk(join(p, e));
      }
    } else if (st.isFile()) {
      h.update(relative(root, p)).update('\0').update(readFileSync(p)).update('\0');
    }
  };
  for (const p of paths) if (existsSync(join(root, p))) walk(join(root, p));
  return h.digest('hex');
}

/** A buildah invocation on a private storage dir (vfs: works on any filesystem, no overlay mounts). */
class Buildah {
  readonly dir: string;
  constructor() {
    this.dir = mkdtempSync(join(imagesDir(), 'buildah-'));
  }

  run(args: readonly string[], cwd?: string): Promise<{ stdout: string }> {
    const argv = [
      'nice',
      '-n',
      '15',
      'buildah',
      '--root',
      join(this.dir, 'root'),
      '--runroot',
      join(this.dir, 'run'),
    ];
    argv.push('--storage-driver', 'vfs', ...args);
    return exec(argv, { cwd, env: { ...process.env, BUILDAH_ISOLATION: 'chroot' }, timeoutMs: 30 * 60_000 });
  }

  /** Commits a container made from scratch with `files` (host path → image path) and a config. */
  async fromScratch(
    ref: string,
    files: Record<string, string>,
    config: string[],
    after?: string[][],
  ): Promise<void> {
    const c = (await this.run(['from', 'scratch'])).stdout.trim();
    for (const [src, dest] of Object.entries(files)) await this.run(['copy', c, src, dest]);
    for (const argv of after ?? []) await this.run(['run', '--isolation', 'chroot', c, '--', ...argv]);
    await this.run(['config', ...config, c]);
    await this.run(['commit', '--rm', c, ref]);
  }

  async push(ref: string, archive: string): Promise<void> {
    const tmp = `${archive}.tmp`;
    rmSync(tmp, { force: true });
    await this.run(['push', ref, `docker-archive:${tmp}:${ref}`]);
    renameSync(tmp, archive);
  }

  /** Storage of a vfs root holds read-only dirs only root may remove; `buildah rm` first, then the tree. */
  async dispose(): Promise<void> {
    await this.run(['rm', '--all']).catch(() => undefined);
    await exec(['rm', '-rf', this.dir], { check: false });
  }
}

/**
 * The local stand-in for `node:20-bookworm-slim`: Debian bookworm minbase plus the Node.js 20 that runs
 * this process (binary, bundled npm/corepack and headers for native module builds), and the `node`
 * user (uid 1000) the official image has.
 */
async function buildBase(b: Buildah, archive: string): Promise<void> {
  const work = mkdtempSync(join(imagesDir(), 'rootfs-'));
  try {
    const rootfs = join(work, 'rootfs');
    say('images: debootstrap --variant=minbase bookworm (about 20 s)');
    await exec(['nice', '-n', '15', 'debootstrap', '--variant=minbase', 'bookworm', rootfs], {
      timeoutMs: 15 * 60_000,
    });
    const nodeExe = process.execPath;
    const prefix = join(nodeExe, '..', '..');
    const usr = join(rootfs, 'usr', 'local');
    await exec(['install', '-D', '-m', '0755', nodeExe, join(usr, 'bin', 'node')]);
    mkdirSync(join(usr, 'lib', 'node_modules'), { recursive: true });
    for (const mod of ['npm', 'corepack']) {
      const src = join(prefix, 'lib', 'node_modules', mod);
      if (existsSync(src)) await exec(['cp', '-a', src, join(usr, 'lib', 'node_modules', mod)]);
    }
    if (existsSync(join(prefix, 'include', 'node'))) {
      mkdirSync(join(usr, 'include'), { recursive: true });
      await exec(['cp', '-a', join(prefix, 'include', 'node'), join(usr, 'include', 'node')]);
    }
    for (const [name, target] of [
      ['npm', '../lib/node_modules/npm/bin/npm-cli.js'],
      ['npx', '../lib/node_modules/npm/bin/npx-cli.js'],
    ])
      await exec(['ln', '-sf', target!, join(usr, 'bin', name!)]);
    // the official image's user and group `node` (the Dockerfile chowns /data to it and runs as it)
    await exec(['chroot', rootfs, 'groupadd', '--gid', String(NODE_UID), 'node']);
    await exec([
      'chroot',
      rootfs,
      'useradd',
      '--uid',
      String(NODE_UID),
      '--gid',
      'node',
      '--shell',
      '/bin/bash',
      '--create-home',
      'node',
    ]);
    // apt caches and logs the image does not need
    await exec([
      'rm',
      '-rf',
      join(rootfs, 'var/cache/apt/archives'),
      join(rootfs, 'var/lib/apt/lists'),
      join(rootfs, 'var/log'),
    ]);
    mkdirSync(join(rootfs, 'var/lib/apt/lists/partial'), { recursive: true });
    mkdirSync(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
    mkdirSync(join(rootfs, 'var/log/apt'), { recursive: true });
    await b.fromScratch(BASE_REF, { [rootfs + '/']: '/' }, [
      '--env',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--cmd',
      'node',
    ]);
    await b.push(BASE_REF, archive);
  } finally {
    // debootstrap mounts /proc (and more) inside the rootfs while it works: unmount before removing
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((p) => p.startsWith(`${work}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await exec(['umount', '-l', m], { check: false });
    await exec(['rm', '-rf', '--one-file-system', work], { check: false });
  }
}

const MACHINE_CAS = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The Dockerfile's `npm ci` runs inside the build and reaches the package registry the way this machine
 * does: when its network inspects TLS, only the machine's CA bundle is trusted for that. Layered onto the
 * local base for the build only (the cached base archive stays plain Debian + Node).
 */
async function buildEnvironment(b: Buildah): Promise<void> {
  if (!existsSync(MACHINE_CAS)) return;
  const c = (await b.run(['from', '--pull=never', BASE_REF])).stdout.trim();
  await b.run(['copy', c, MACHINE_CAS, '/usr/local/share/podgate-build/machine-cas.crt']);
  // and node-gyp uses the headers the base carries instead of downloading them (no such download here)
  await b.run([
    'config',
    '--env',
    'NODE_EXTRA_CA_CERTS=/usr/local/share/podgate-build/machine-cas.crt',
    '--env',
    'npm_config_nodedir=/usr/local',
    c,
  ]);
  await b.run(['commit', '--rm', c, BASE_REF]);
}

function cached(name: string, hash: string): { archive: string; hit: boolean } {
  const archive = join(imagesDir(), `${name}-${hash.slice(0, 16)}.tar`);
  return { archive, hit: existsSync(archive) };
}

/** Builds (or finds in the cache) every image the node test needs. `repoRoot` holds the Dockerfile;
 * `corednsBinary` is asked for last, so a CoreDNS build can run beside the image builds. */
export async function buildImages(
  repoRoot: string,
  corednsBinary: () => Promise<string>,
  options: ImageOptions = {},
): Promise<ImageSet> {
  const b = new Buildah();
  try {
    const nodeSha = await fileSha(process.execPath);
    const baseHash = createHash('sha256').update(`${RECIPE} bookworm minbase node ${nodeSha}`).digest('hex');
    const base = cached('node-20-bookworm-slim', baseHash);
    if (!base.hit) await buildBase(b, base.archive);

    const podgateHash = treeHash(
      repoRoot,
      [
        'Dockerfile',
        '.dockerignore',
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'scripts/bundle.mjs',
        'src',
        'templates',
        'public',
      ],
      createHash('sha256').update(
        `${RECIPE} ${baseHash} ${existsSync(MACHINE_CAS) ? await fileSha(MACHINE_CAS) : ''}`,
      ),
    );
    const podgateRef = `localhost/podgate:test-${podgateHash.slice(0, 12)}`;
    const podgate = cached('podgate', podgateHash);
    if (!podgate.hit) {
      await b.run(['pull', `docker-archive:${base.archive}`]);
      await buildEnvironment(b);
      say('images: podgate from the project Dockerfile (apt-get and npm ci inside: a few minutes cold)');
      await b.run(
        [
          'bud',
          '--pull=never',
          '--isolation',
          'chroot',
          '--layers=false',
          '-t',
          podgateRef,
          '-f',
          'Dockerfile',
          '.',
        ],
        repoRoot,
      );
      await b.push(podgateRef, podgate.archive);
    }

    const corednsBin = await corednsBinary();
    const corednsSha = await fileSha(corednsBin);
    const corednsRef = `localhost/podgate-test/coredns:${corednsSha.slice(0, 12)}`;
    const coredns = cached('coredns', corednsSha);
    if (!coredns.hit) {
      await b.fromScratch(corednsRef, { [corednsBin]: '/coredns' }, [
        '--entrypoint',
        '["/coredns"]',
        '--port',
        '53/udp',
      ]);
      await b.push(corednsRef, coredns.archive);
    }

    // busybox for the workload (httpd, sh) plus iperf3 and the libraries it links, for the throughput figure
    const extra: Record<string, string> = { '/usr/bin/iperf3': '/usr/bin/iperf3' };
    for (const m of (await exec(['ldd', '/usr/bin/iperf3'])).stdout.matchAll(/(\S*\/\S+\.so[.\d]*)/g)) {
      extra[realpathSync(m[1]!)] = m[1]!;
    }
    const busyboxHash = createHash('sha256').update(await fileSha('/bin/busybox'));
    for (const src of Object.keys(extra).sort()) busyboxHash.update(src).update(await fileSha(src));
    const busyboxSha = busyboxHash.digest('hex');
    const busyboxRef = `localhost/podgate-test/busybox:${busyboxSha.slice(0, 12)}`;
    const busybox = cached('busybox', createHash('sha256').update(`${RECIPE} ${busyboxSha}`).digest('hex'));
    if (!busybox.hit) {
      const etc = mkdtempSync(join(imagesDir(), 'bb-'));
      try {
        writeFileSync(
          join(etc, 'passwd'),
          'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
        );
        writeFileSync(join(etc, 'group'), 'root:x:0:\nnogroup:x:65534:\n');
        await b.fromScratch(
          busyboxRef,
          {
            '/bin/busybox': '/bin/busybox',
            [join(etc, 'passwd')]: '/etc/passwd',
            [join(etc, 'group')]: '/etc/group',
            ...extra,
          },
          ['--cmd', '["/bin/sh"]', '--env', 'PATH=/bin'],
          [['/bin/busybox', '--install', '-s', '/bin']],
        );
      } finally {
        rmSync(etc, { recursive: true, force: true });
      }
      await b.push(busyboxRef, busybox.archive);
    }
    const pauseSrc = fileURLToPath(new URL('../../../../test/cluster/images/pause.c', import.meta.url));
    const pauseHash = createHash('sha256').update(`${RECIPE} `).update(readFileSync(pauseSrc)).digest('hex');
    const pauseRef = `localhost/podgate-test/pause:${pauseHash.slice(0, 12)}`;
    const pause = cached('pause', pauseHash);
    if (!pause.hit) {
      const out = mkdtempSync(join(imagesDir(), 'pause-'));
      try {
        await exec(['gcc', '-static', '-O2', '-o', join(out, 'pause'), pauseSrc]);
        await b.fromScratch(pauseRef, { [join(out, 'pause')]: '/pause' }, ['--entrypoint', '["/pause"]']);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      await b.push(pauseRef, pause.archive);
    }
    let postgres: BuiltImage | undefined;
    if (options.postgres) {
      const pgHash = createHash('sha256').update(`${RECIPE} ${baseHash} ${POSTGRES_RECIPE}`).digest('hex');
      const pgRef = `localhost/podgate-test/postgres:${pgHash.slice(0, 12)}`;
      const pg = cached('postgres', pgHash);
      if (!pg.hit) {
        say("images: postgres (Debian's postgresql package, apt-get inside buildah: a minute or two cold)");
        // the plain base (the podgate build above may have layered its build environment onto the name)
        await b.run(['pull', `docker-archive:${base.archive}`]);
        const c = (await b.run(['from', '--pull=never', BASE_REF])).stdout.trim();
        await b.run(['run', '--isolation', 'chroot', c, '--', 'sh', '-c', POSTGRES_RECIPE]);
        await b.run([
          'config',
          '--env',
          'PATH=/usr/local/lib/postgresql-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          '--user',
          `${POSTGRES_UID}:${POSTGRES_UID}`,
          '--cmd',
          '["postgres", "--version"]',
          c,
        ]);
        await b.run(['commit', '--squash', '--rm', c, pgRef]);
        await b.push(pgRef, pg.archive);
      }
      postgres = { ref: pgRef, archive: pg.archive, cached: pg.hit };
    }
    return {
      ...(postgres ? { postgres } : {}),
      pause: { ref: pauseRef, archive: pause.archive, cached: pause.hit },
      podgate: { ref: podgateRef, archive: podgate.archive, cached: podgate.hit },
      coredns: { ref: corednsRef, archive: coredns.archive, cached: coredns.hit },
      busybox: { ref: busyboxRef, archive: busybox.archive, cached: busybox.hit },
    };
  } finally {
    await b.dispose();
  }
}
