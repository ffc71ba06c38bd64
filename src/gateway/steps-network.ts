/** Steps that make the host a router: IPv4 forwarding (persistent and live) and NAT for the office ranges. */
import { gatewayRules, ruleArgv } from './layout.js';
import type { Step } from './step.js';

export const SYSCTL_CONTENT =
  '# written by podgate: this host routes the office LAN into the cluster\nnet.ipv4.ip_forward = 1\n';

export const forwarding: Step = {
  label: 'forwarding',
  async run(ctx) {
    const { host, layout } = ctx;
    const fileOk = await host.hasFile(layout.sysctlFile, SYSCTL_CONTENT, 0o644);
    const live = (await host.read('/proc/sys/net/ipv4/ip_forward'))?.trim() === '1';
    if (fileOk && live)
      return { result: 'unchanged', detail: `net.ipv4.ip_forward=1 (live and in ${layout.sysctlFile})` };
    const todo = [fileOk ? '' : layout.sysctlFile, live ? '' : 'sysctl -w'].filter(Boolean).join(' + ');
    if (ctx.dryRun) return { result: 'would change', detail: todo };
    if (!fileOk) await host.installFile(layout.sysctlFile, SYSCTL_CONTENT, 0o644);
    if (!live) await host.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    return { result: 'changed', detail: todo };
  },
};

export const nat: Step = {
  label: 'nat',
  async run(ctx) {
    const { host, layout } = ctx;
    if (ctx.lans.length === 0) return { result: 'skipped', detail: 'no --lan range given' };
    const added: string[] = [];
    let missing = 0;
    for (const rule of gatewayRules(layout, ctx.lans)) {
      // -C exits 1 when the rule is absent; anything else (no table, bad match) is a real error
      const check = await host.run(ruleArgv(rule, '-C'), { check: false });
      if (check.code === 0) continue;
      if (check.code !== 1) await host.run(ruleArgv(rule, '-C'));
      missing++;
      if (ctx.dryRun) continue;
      await host.run(ruleArgv(rule, '-A'));
      added.push(`${rule.table}/${rule.chain} ${rule.spec.slice(0, 4).join(' ')}`);
    }
    const lans = ctx.lans.map((l) => l.text).join(', ');
    if (missing === 0) return { result: 'unchanged', detail: `MASQUERADE ${lans} out of ${layout.dev}` };
    if (ctx.dryRun)
      return { result: 'would change', detail: `${missing} rule(s) for ${lans} out of ${layout.dev}` };
    return {
      result: 'changed',
      detail: `added ${added.length} rule(s): MASQUERADE ${lans} out of ${layout.dev}`,
    };
  },
};
