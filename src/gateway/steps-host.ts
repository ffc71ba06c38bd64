/**
 * Steps that prepare the host and its credentials: check the host (and install openvpn with --install),
 * issue or re-use the gateway certificate, upload the profile.
 */
import { AppError } from '../lib/errors.js';
import type { RemoteHost } from './remote.js';
import type { Step, StepContext } from './step.js';

/** Renew the gateway certificate when it has less than this left. */
export const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

const TOOLS = ['openvpn', 'iptables', 'ip'] as const;
type Tool = (typeof TOOLS)[number];

/** Package names per package manager for each tool we need. */
const PACKAGES: Record<string, { install: string[]; update?: string[]; names: Record<Tool, string> }> = {
  'apt-get': {
    update: ['apt-get', 'update', '-q'],
    install: [
      'env',
      'DEBIAN_FRONTEND=noninteractive',
      'apt-get',
      'install',
      '-y',
      '-q',
      '--no-install-recommends',
    ],
    names: { openvpn: 'openvpn', iptables: 'iptables', ip: 'iproute2' },
  },
  dnf: {
    install: ['dnf', 'install', '-y'],
    names: { openvpn: 'openvpn', iptables: 'iptables', ip: 'iproute' },
  },
  yum: {
    install: ['yum', 'install', '-y'],
    names: { openvpn: 'openvpn', iptables: 'iptables', ip: 'iproute' },
  },
  zypper: {
    install: ['zypper', '--non-interactive', 'install'],
    names: { openvpn: 'openvpn', iptables: 'iptables', ip: 'iproute2' },
  },
  apk: { install: ['apk', 'add'], names: { openvpn: 'openvpn', iptables: 'iptables', ip: 'iproute2' } },
};

/** Absolute path of a command on the host, or undefined. The name is passed as $1, never spliced in. */
export async function which(host: RemoteHost, cmd: string): Promise<string | undefined> {
  const r = await host.run(['sh', '-c', 'command -v -- "$1"', 'sh', cmd], { check: false });
  const path = r.stdout.trim();
  return r.code === 0 && path.startsWith('/') ? path : undefined;
}

async function installPackages(ctx: StepContext, missing: Tool[]): Promise<string> {
  for (const [pm, spec] of Object.entries(PACKAGES)) {
    if (!(await which(ctx.host, pm))) continue;
    const pkgs = missing.map((t) => spec.names[t]);
    if (spec.update) await ctx.host.run(spec.update);
    await ctx.host.run([...spec.install, ...pkgs]);
    return `${pm} installed ${pkgs.join(', ')}`;
  }
  throw new AppError(
    400,
    'no_package_manager',
    `no supported package manager (${Object.keys(PACKAGES).join(', ')}) on the host; install ${missing.join(', ')} by hand`,
  );
}

export const checkHost: Step = {
  label: 'host',
  async run(ctx) {
    const { host } = ctx;
    const os = (await host.run(['uname', '-s'])).stdout.trim();
    if (os !== 'Linux')
      throw new AppError(400, 'unsupported_host', `the gateway host must run Linux (uname -s says "${os}")`);
    const missing: Tool[] = [];
    for (const t of TOOLS) if (!(await which(host, t))) missing.push(t);
    let result: 'changed' | 'unchanged' | 'would change' = 'unchanged';
    let installed = '';
    if (missing.length > 0) {
      if (!ctx.install) {
        throw new AppError(
          400,
          'missing_packages',
          `${missing.join(', ')} not found on the host; install them or rerun with --install`,
        );
      }
      if (ctx.dryRun) result = 'would change';
      else {
        installed = await installPackages(ctx, missing);
        result = 'changed';
      }
    }
    ctx.state.openvpnPath = (await which(host, 'openvpn')) ?? '/usr/sbin/openvpn';
    ctx.state.iptablesPath = (await which(host, 'iptables')) ?? '/usr/sbin/iptables';
    if (ctx.serviceManager !== 'auto') ctx.state.manager = ctx.serviceManager;
    else {
      const pid1 = (await host.read('/proc/1/comm'))?.trim();
      ctx.state.manager = pid1 === 'systemd' && (await which(host, 'systemctl')) ? 'systemd' : 'daemon';
    }
    const version =
      missing.includes('openvpn') && result !== 'changed'
        ? 'openvpn to install'
        : (await host.run([ctx.state.openvpnPath, '--version'], { check: false })).stdout
            .split('\n')[0]
            ?.split(' ')
            .slice(0, 2)
            .join(' ');
    const who = host.sudo ? `${host.session.target.user} with sudo` : 'root';
    return {
      result,
      detail: [`Linux, ${who}, ${version}, ${ctx.state.manager}`, installed].filter(Boolean).join('; '),
    };
  },
};

/** The PEM inside the profile's <cert> block, whitespace removed, for comparison. */
export function profileCertBody(profile: string): string | undefined {
  const m = /<cert>\s*-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----\s*<\/cert>/.exec(
    profile,
  );
  return m ? m[1]!.replace(/\s+/g, '') : undefined;
}

function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

export const certificate: Step = {
  label: 'certificate',
  async run(ctx) {
    const { layout, certs } = ctx;
    const current = await certs.findValid(layout.commonName);
    const uploaded = await ctx.host.read(layout.profile);
    const body = uploaded === undefined ? undefined : profileCertBody(uploaded);
    const fresh = current !== undefined && current.notAfter.getTime() - ctx.now().getTime() > RENEW_BEFORE_MS;
    if (current && uploaded && fresh && body === pemBody(current.certPem)) {
      ctx.state.profile = uploaded;
      ctx.state.cert = current;
      return {
        result: 'unchanged',
        detail: `${layout.commonName} serial ${current.serial} valid until ${current.notAfter.toISOString()}`,
      };
    }
    const why = !current ? 'none issued' : !fresh ? 'expiring' : 'uploaded profile differs';
    if (ctx.dryRun) return { result: 'would change', detail: `${layout.commonName}: issue (${why})` };
    // common names are unique among valid certificates: the one being replaced goes first
    if (current) await certs.revoke(current.serial, 'superseded');
    const issued = await certs.issue(layout.commonName);
    ctx.state.profile = issued.profile;
    ctx.state.cert = issued.cert;
    return { result: 'changed', detail: `${layout.commonName} serial ${issued.cert.serial} issued (${why})` };
  },
};

export const profile: Step = {
  label: 'profile',
  async run(ctx) {
    const { layout, host } = ctx;
    const text = ctx.state.profile;
    if (text === undefined) return { result: 'would change', detail: `${layout.profile} (new certificate)` };
    if (await host.hasFile(layout.profile, text, 0o600))
      return { result: 'unchanged', detail: `${layout.profile} (sha256 and mode 0600 match)` };
    if (ctx.dryRun) return { result: 'would change', detail: layout.profile };
    await host.run(['install', '-d', '-m', '700', '-o', 'root', '-g', 'root', '--', layout.confDir]);
    await host.installFile(layout.profile, text, 0o600);
    ctx.state.restart = true;
    return { result: 'changed', detail: `${layout.profile} uploaded, mode 0600` };
  },
};
