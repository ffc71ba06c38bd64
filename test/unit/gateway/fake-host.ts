/**
 * A scripted gateway host behind the SshSession interface, for the paths no real part can exercise here:
 * a non-root user with passwordless sudo, and systemd as PID 1. It models only the commands the gateway
 * module runs (files with modes, ip_forward, iptables rules, a daemon pid, systemd unit state, the tun
 * device and its route) and answers anything else with exit 127, so an unexpected command fails loudly.
 */
import { createHash } from 'node:crypto';
import type { RemoteOutput, SshSession } from '../../../src/gateway/ssh-session.js';

const ok = (stdout = ''): RemoteOutput => ({ code: 0, stdout, stderr: '' });
const fail = (code: number, stderr: string): RemoteOutput => ({ code, stdout: '', stderr });

export class FakeHost implements SshSession {
  readonly target;
  readonly files = new Map<string, { content: string; mode: string }>();
  readonly rules = new Set<string>();
  /** Every command as run (argv, with the sudo/env prefix), in order. */
  readonly commands: string[][] = [];
  forward = '0';
  pid: number | undefined;
  active = false;
  enabled = false;
  private tmp = 0;

  constructor(
    readonly options: {
      user?: string;
      sudo?: boolean;
      systemd?: boolean;
      tunnel?: boolean;
      /** Tools not installed until apt-get installs them. */
      missing?: string[];
      devOf?: string;
    } = {},
  ) {
    this.target = { user: options.user ?? 'root', host: 'gw.office', port: 22 };
  }

  get tunUp(): boolean {
    return this.options.tunnel !== false && (this.pid !== undefined || this.active);
  }

  async exec(full: readonly string[]): Promise<RemoteOutput> {
    this.commands.push([...full]);
    let argv = [...full];
    const root = this.target.user === 'root';
    if (argv[0] === 'sudo') {
      if (!this.options.sudo) return fail(1, 'sudo: a password is required');
      argv = argv.slice(argv[2] === '--' ? 3 : 2);
    } else if (
      !root &&
      ['install', 'iptables', 'sysctl', 'systemctl', 'kill'].includes(argv[argv[0] === 'env' ? 2 : 0]!)
    ) {
      return fail(1, 'Permission denied');
    }
    while (argv[0] === 'env') {
      argv = argv.slice(1);
      while (argv[0]?.includes('=')) argv = argv.slice(1);
    }
    const [cmd, ...a] = argv;
    switch (cmd) {
      case 'id':
        return ok(root ? '0\n' : '1000\n');
      case 'true':
        return ok();
      case 'uname':
        return ok('Linux\n');
      case 'sh':
        return ['openvpn', 'iptables', 'ip', 'systemctl', 'apt-get'].includes(a[3]!) &&
          !this.options.missing?.includes(a[3]!)
          ? ok(`/usr/sbin/${a[3]}\n`)
          : fail(1, '');
      case 'cat': {
        const path = a[1]!;
        if (path === '/proc/1/comm') return ok(this.options.systemd ? 'systemd\n' : 'init\n');
        if (path === '/proc/sys/net/ipv4/ip_forward') return ok(this.forward + '\n');
        const m = /^\/proc\/(\d+)\/cmdline$/.exec(path);
        if (m)
          return Number(m[1]) === this.pid ? ok(this.daemonArgv.join('\0') + '\0') : fail(1, 'No such file');
        const f = this.files.get(path);
        return f ? ok(f.content) : fail(1, `cat: ${path}: No such file or directory`);
      }
      case 'sha256sum': {
        const f = this.files.get(a[1]!);
        return f
          ? ok(`${createHash('sha256').update(f.content).digest('hex')}  ${a[1]}\n`)
          : fail(1, 'No such file');
      }
      case 'stat': {
        const f = this.files.get(a[3]!);
        return f ? ok(f.mode + '\n') : fail(1, 'No such file');
      }
      case 'mktemp':
        return ok(`/tmp/podgate.fake${++this.tmp}\n`);
      case 'install': {
        if (a[0] === '-d') return ok();
        const [src, dst] = a.slice(-2) as [string, string];
        const mode = a[a.indexOf('-m') + 1]!;
        const from = this.files.get(src);
        if (!from) return fail(1, `install: cannot stat '${src}'`);
        this.files.set(dst, { content: from.content, mode });
        return ok();
      }
      case 'rm':
        for (const p of a.filter((x) => !x.startsWith('-'))) this.files.delete(p);
        return ok();
      case 'rmdir':
      case 'test':
        return cmd === 'test' && !this.files.has(a[1]!) ? fail(1, '') : ok();
      case 'sysctl':
        this.forward = '1';
        return ok();
      case 'iptables': {
        const action = a[3]!;
        const key = [a[2], ...a.slice(4)].join(' ');
        if (action === '-C')
          return this.rules.has(key)
            ? ok()
            : fail(1, 'iptables: Bad rule (does a matching rule exist in that chain?).');
        if (action === '-A') this.rules.add(key);
        if (action === '-D') this.rules.delete(key);
        return ok();
      }
      case '/usr/sbin/openvpn':
        if (a[0] === '--version')
          return { code: 1, stdout: 'OpenVPN 2.6.14 x86_64-pc-linux-gnu\n', stderr: '' };
        this.pid = 4242;
        this.daemonArgv = ['/usr/sbin/openvpn', ...a];
        this.files.set(a[3]!, { content: '4242\n', mode: '644' });
        return ok();
      case 'kill':
        this.pid = undefined;
        return ok();
      case 'systemctl':
        if (a[0] === 'is-active') return this.active ? ok() : fail(3, '');
        if (a[0] === 'is-enabled') return this.enabled ? ok() : fail(1, '');
        if (a[0] === 'enable') this.enabled = true;
        if (a[0] === 'start' || a[0] === 'restart') this.active = true;
        if (a[0] === 'disable') this.enabled = this.active = false;
        return ok();
      case 'ip':
        if (a[0] === '-o')
          return this.tunUp
            ? ok(`9: ${a[5]}    inet 10.140.0.2/16 scope global ${a[5]}\n`)
            : fail(1, `Device "${a[5]}" does not exist.`);
        if (a[0] === 'route' && a[1] === 'get')
          return ok(
            this.tunUp
              ? `${a[2]} via 10.140.0.1 dev ${this.options.devOf} src 10.140.0.2 uid 0\n`
              : `${a[2]} via 192.168.1.1 dev eth0\n`,
          );
        return ok();
      case 'apt-get':
        if (a[0] === 'install') this.options.missing = [];
        return ok();
      case 'tail':
        return ok('2026-11-27 12:00:00 Peer Connection Initiated with [AF_INET]172.18.12.21:30030\n');
      default:
        return fail(127, `${cmd}: not modelled`);
    }
  }

  private daemonArgv: string[] = [];

  async writeFile(path: string, data: string | Buffer, mode: number): Promise<void> {
    this.files.set(path, { content: data.toString(), mode: mode.toString(8) });
  }

  forwardOut(): never {
    throw new Error('not modelled');
  }

  close(): void {}

  /** Commands after the sudo/env prefix, joined, for readable assertions. */
  plain(): string[] {
    return this.commands.map((c) => {
      let x = c[0] === 'sudo' && c[2] === '--' ? c.slice(3) : c;
      if (x[0] === 'env') x = x.slice(2);
      return x.join(' ');
    });
  }
}
