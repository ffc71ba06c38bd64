import { z } from 'zod';
import { NAME_PATTERN } from '../lib/names.js';
import { parseCidr, isIp, type Cidr } from '../lib/cidr.js';
import { authSchema } from './auth-schema.js';
import { storeSchema } from './store-schema.js';

/** A CIDR string, checked and normalised by lib/cidr (host bits set is an error). */
const cidr = z.string().superRefine((value, ctx) => {
  try {
    parseCidr('value', value);
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message.replace(/^value: /, '') });
  }
});
/**
 * The IPv6 client range (`server-ipv6`): openvpn 2.6 takes /64 to /124. Each device's IPv6 tunnel
 * address has the host index of its IPv4 one, so the range is checked against vpn.clientSubnet too.
 */
const cidr6 = z.string().superRefine((value, ctx) => {
  try {
    const c = parseCidr('value', value);
    if (c.family !== 'ipv6')
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${value}" is not an IPv6 range` });
    else if (c.prefix < 64 || c.prefix > 124)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `"${value}": the prefix must be /64 to /124 (what openvpn's server-ipv6 accepts)`,
      });
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message.replace(/^value: /, '') });
  }
});
const ip = z.string().refine(isIp, (v) => ({ message: `"${v}" is not an IP address` }));
const hostname = z
  .string()
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/,
    'must be an IP address or DNS name (letters, digits, ".", "-")',
  );
/** An IP address or a CIDR range. */
const proxyRange = z.string().superRefine((value, ctx) => {
  if (isIp(value)) return;
  try {
    parseCidr('value', value);
  } catch {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${value}" is not an IP address or CIDR range` });
  }
});
const name = z.string().regex(NAME_PATTERN, 'must match ^[a-z0-9][a-z0-9._-]{0,63}$');
const port = z.number().int().min(1).max(65535);
/** http(s)://host[:port] without a path: where a probe listener answers /connection-probe. */
const probeBase = z
  .string()
  .url('must be an absolute URL')
  .refine((v) => /^https?:\/\/[^/?#@]+\/?$/.test(v), 'must be http(s)://host[:port] without a path');

/** A Kubernetes namespace name: a DNS-1123 label (what the API server accepts). */
export const namespaceName = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
    'must be a DNS-1123 label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
  );
/** "FROM-TO": the cluster's --service-node-port-range. */
const portRange = z
  .string()
  .regex(/^\d{1,5}-\d{1,5}$/, 'must be FROM-TO, e.g. 30000-32767')
  .refine(
    (v) => {
      const [from, to] = v.split('-').map(Number);
      return from! >= 1 && to! <= 65535 && from! <= to!;
    },
    { message: 'must be FROM-TO with 1 <= FROM <= TO <= 65535' },
  );

/**
 * The whole configuration of podgate. Every key has a default that runs with no file at all;
 * every key is also settable as PODGATE_<PATH> (camelCase -> UPPER_SNAKE, "." -> "_"),
 * e.g. vpn.clientSubnet = PODGATE_VPN_CLIENT_SUBNET. Lists from the environment are comma-separated.
 */
export const configSchema = z
  .object({
    /** Where the SQLite database, the encrypted CA key and rendered server files live. */
    dataDir: z.string().min(1).default('./data'),
    /** SQLite in dataDir (default) or a PostgreSQL server shared by several replicas (./store-schema.ts). */
    store: storeSchema,
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    web: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Trust X-Forwarded-Proto/-For from a reverse proxy (cookies become Secure when it says https). */
        trustProxy: z.boolean().default(false),
        /**
         * The reverse proxies' addresses (IPs or CIDRs). X-Forwarded-* is believed only when the
         * connection comes from one of them; required when trustProxy is true.
         */
        trustedProxies: z.array(proxyRange).default([]),
        /** API tokens expire this many days after they are made (the default for new tokens). */
        apiTokenDays: z.number().int().min(1).max(3650).default(90),
        /**
         * /metrics on the public listener: only with `Authorization: Bearer <token in this file>`.
         * Without it (and without metricsPort) the public listener answers 404 for /metrics.
         */
        metricsTokenFile: z.string().min(1).optional(),
        /**
         * A separate listener that serves only /metrics, without a token (e.g. for a scrape from inside
         * the cluster); off when unset, 0 picks a free port.
         */
        metricsHost: z.string().min(1).default('127.0.0.1'),
        metricsPort: z.number().int().min(0).max(65535).optional(),
        /** TLS certificate and key files; when both are set the web app serves HTTPS. */
        tlsCertFile: z.string().optional(),
        tlsKeyFile: z.string().optional(),
        /**
         * The address people and OpenVPN Connect reach this web app at, e.g. `https://vpn.example.com`
         * (no path). Import links (`openvpn://import-profile/…`) are built on it and are refused unless it
         * is https, or a loopback address for a local try-out. Unset: the address of the request.
         */
        publicUrl: z
          .string()
          .url('must be an absolute URL')
          .refine((v) => /^https?:\/\/[^/]+\/?$/.test(v), 'must be http(s)://host[:port] without a path')
          .optional(),
        /** Minutes a one-use import link for OpenVPN Connect stays valid. */
        importLinkMinutes: z.number().int().min(1).max(1440).default(10),
        sessionIdleMinutes: z.number().int().min(1).default(30),
        sessionAbsoluteHours: z.number().int().min(1).default(12),
      })
      .strict()
      .superRefine((web, ctx) => {
        if (web.trustProxy && web.trustedProxies.length === 0) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['trustedProxies'],
            message:
              'must list the reverse proxy addresses (IPs or CIDRs) when web.trustProxy is true; ' +
              'forwarded addresses from anyone else are never believed',
          });
        }
      })
      .default({}),
    ca: z
      .object({
        commonName: z.string().min(1).max(64).default('podgate CA'),
        keyType: z.enum(['rsa-3072', 'ec-p384']).default('ec-p384'),
        days: z.number().int().min(1).default(3650),
        /** File holding the passphrase the CA key is encrypted with (scrypt). Without it a random key file is made. */
        passphraseFile: z.string().optional(),
      })
      .strict()
      .default({}),
    vpn: z
      .object({
        /** Common name of the OpenVPN server certificate; clients check it with verify-x509-name. */
        serverName: name.default('podgate-server'),
        clientSubnet: cidr.default('10.140.0.0/16'),
        /**
         * IPv6 tunnel range for dual-stack clusters (e.g. a ULA /64 such as `fd00:140::/64`); unset: the
         * tunnel carries IPv4 only. With it the server pushes the cluster's IPv6 ranges and DNS too, and
         * NATs the range like the IPv4 one. Must hold as many addresses as vpn.clientSubnet.
         */
        clientSubnet6: cidr6.optional(),
        proto: z.enum(['udp', 'tcp']).default('udp'),
        port: port.default(30030),
        /** Addresses clients dial (node IPs or names); one `remote` line each. Discovery fills it in cluster mode. */
        endpoints: z.array(hostname).default([]),
        routes: z
          .object({
            pods: z.array(cidr).default([]),
            services: z.array(cidr).default([]),
            extra: z.array(cidr).default([]),
          })
          .strict()
          .default({}),
        dns: z
          .object({
            servers: z.array(ip).default([]),
            domain: z
              .string()
              .regex(/^[a-z0-9]([a-z0-9.-]{0,252})$/, 'must be a DNS domain')
              .default('cluster.local'),
            searchDomains: z
              .array(z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,252})$/, 'must be a DNS domain'))
              .default([]),
          })
          .strict()
          .default({}),
        keyType: z.enum(['ec-p256', 'rsa-2048', 'rsa-3072']).default('ec-p256'),
        certDays: z.number().int().min(1).max(3650).default(365),
        crlDays: z.number().int().min(8).max(365).default(30),
        /**
         * The leader re-signs the CRL once it is this old (default daily; sooner when it expires within
         * 7 days). The timer checks every min(this, 1 hour). Short values are for tests and failover drills.
         */
        crlRefreshSeconds: z.number().int().min(2).max(86_400).default(86_400),
        /**
         * After a device is renewed, its old certificate stays valid this many days (time to install the
         * new profile), then it is revoked as superseded. 0 revokes it as soon as the new profile is handed out.
         */
        renewGraceDays: z.number().int().min(0).max(90).default(7),
        /** Certificates expiring within this many days are flagged in the web app, `cert list` and /metrics. */
        expiryWarningDays: z.number().int().min(1).max(365).default(30),
        controlChannel: z.enum(['tls-crypt-v2', 'tls-crypt']).default('tls-crypt-v2'),
        /** MASQUERADE the client subnet on the server host (`server run`); the pod image always does. */
        nat: z.boolean().default(false),
        /** Drop privileges after start (local mode); empty disables the drop. */
        user: z.string().default('nobody'),
        group: z.string().default('nogroup'),
        /** Office LAN ranges routed through a gateway; checked for overlaps with cluster ranges. */
        officeLans: z.array(cidr).default([]),
        /**
         * OpenVPN server pods in the cluster (2+ for high availability): spread across nodes, a
         * PodDisruptionBudget keeps one up during a drain, rolling updates replace one pod at a time.
         */
        replicas: z.number().int().min(1).max(16).default(1),
      })
      .strict()
      .superRefine((vpn, ctx) => {
        if (vpn.clientSubnet6 === undefined) return;
        let v4: Cidr, v6: Cidr;
        try {
          [v4, v6] = [parseCidr('v4', vpn.clientSubnet), parseCidr('v6', vpn.clientSubnet6)];
        } catch {
          return; // already reported by the field's own check
        }
        if (v4.family === 'ipv4' && v6.family === 'ipv6' && 128 - v6.prefix < 32 - v4.prefix)
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['clientSubnet6'],
            message: `${v6.text} is smaller than vpn.clientSubnet ${v4.text}: each device's IPv6 address has the host index of its IPv4 one (use at most /${96 + v4.prefix})`,
          });
      })
      .default({}),
    /** Limits on self-service certificates (web app and API); the CLI is not limited. */
    devices: z
      .object({
        /** Valid client certificates one user may hold; another is refused (409) until one is revoked. */
        maxValidPerUser: z.number().int().min(1).max(10_000).default(10),
        /** Certificates one user may make per sliding hour; more are refused with 429. */
        issuesPerHour: z.number().int().min(1).max(100_000).default(20),
        /** Key generations running at once in one process (RSA-3072 is ~0.5 s of a core each). */
        keygenConcurrency: z.number().int().min(1).max(64).default(1),
        /** Requests that may wait for key generation; more are refused with 503 so sign-in keeps its share. */
        keygenQueue: z.number().int().min(0).max(10_000).default(8),
      })
      .strict()
      .default({}),
    /** History of VPN sessions (who was connected, when, how much traffic). */
    sessions: z
      .object({
        /** Ended sessions are deleted this many days after they ended (by `podgate serve`). */
        retainDays: z.number().int().min(1).max(3650).default(90),
        /** How often `server run` reads live sessions to record them (a crash loses at most this much). */
        recordEverySeconds: z.number().int().min(1).max(3600).default(60),
      })
      .strict()
      .default({}),
    /**
     * "Check my connection" on the devices page: the browser fetches a probe through the tunnel and
     * shows each check green or red. The probe answers only `reachable` plus the page's nonce, and only
     * to web.publicUrl's origin (unset: browsers cannot read it, and the page says so).
     */
    connectionCheck: z
      .object({
        /**
         * TCP port of the probe listener beside openvpn: `server run` on the server's tunnel-side address,
         * the agent in the server pod on the pod IP. 0 turns the listener off.
         */
        port: z.number().int().min(0).max(65535).default(8099),
        /**
         * The manager's own Service as a connected device reaches it through the tunnel, by cluster DNS
         * name, e.g. `http://podgate-manager.podgate.svc.cluster.local` (k8s/deployment.yaml sets it).
         * The manager resolves the name itself for the ClusterIP check unless serviceIpUrl is set.
         */
        serviceDnsUrl: probeBase.optional(),
        /** The same Service by its ClusterIP, e.g. `http://10.96.0.80`. */
        serviceIpUrl: probeBase.optional(),
      })
      .strict()
      .default({}),
    kubernetes: z
      .object({
        namespace: namespaceName.default('middleware'),
        kubeconfig: z.string().optional(),
        context: z.string().optional(),
        image: z.string().min(1).default('podgate:latest'),
        /** The Service's NodePort; must lie in nodePortRange. */
        nodePort: port.default(30030),
        /** The cluster's --service-node-port-range (Kubernetes' default 30000-32767). */
        nodePortRange: portRange.default('30000-32767'),
        /** Reach the API server through an SSH jump host: user@host[:port]. */
        sshBastion: z.string().optional(),
        sshBastionIdentityFile: z.string().optional(),
      })
      .strict()
      .superRefine((k, ctx) => {
        const [from, to] = k.nodePortRange.split('-').map(Number);
        if (k.nodePort < from! || k.nodePort > to!) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['nodePort'],
            message: `${k.nodePort} is outside kubernetes.nodePortRange ${k.nodePortRange} (the cluster's --service-node-port-range)`,
          });
        }
      })
      .default({}),
    auth: authSchema,
    /** Access rules (see README "Access rules"). */
    access: z
      .object({
        /**
         * `enforce`: only cluster DNS and what rules allow; `open`: every device reaches everything (the
         * behaviour before rules existed). Unset: what the data dir records (`open` for a data dir made
         * before access rules, `enforce` from `podgate init` / the first `serve` on a new one).
         */
        mode: z.enum(['open', 'enforce']).optional(),
        // Enforcement points (`server run`, the server pod's agent): how they behave before a bundle.
        /**
         * The mode before this server has ever received an access bundle (the bundle's own mode decides
         * afterwards). `enforce`: only cluster DNS is reachable and every device is refused at connect
         * until a bundle lists it. `open`: today's behaviour, no filter, no identity check at connect.
         */
        modeBeforeBundle: z.enum(['open', 'enforce']).default('open'),
        /** The VPN device as nftables matches it (a name or a `prefix*` wildcard). */
        tunInterface: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,15}\*?$/, 'must be an interface name, optionally ending in *')
          .default('tun*'),
      })
      .strict()
      .default({}),
    /** Scheduled backups written by `podgate serve` (see `podgate backup` for one-off ones). */
    backup: z
      .object({
        /** Directory for scheduled backups; unset disables them. Keep it on another disk than dataDir. */
        dir: z.string().min(1).optional(),
        /** How many scheduled backups to keep; older ones are deleted after a new one is written. */
        keep: z.number().int().min(1).max(1000).default(7),
        /** Hours between scheduled backups. */
        intervalHours: z
          .number()
          .min(0.01)
          .max(24 * 365)
          .default(24),
        /** File holding the passphrase backups are encrypted with (at least 12 characters). */
        passphraseFile: z.string().min(1).optional(),
      })
      .strict()
      .refine((b) => b.dir === undefined || b.passphraseFile !== undefined, {
        message: 'is required when backup.dir is set',
        path: ['passphraseFile'],
      })
      .default({}),
    gateway: z
      .object({
        knownHostsFile: z.string().optional(),
        /** Pinned host key fingerprints, "host[:port]" -> "SHA256:...". */
        hostKeyFingerprints: z.record(z.string()).default({}),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type VpnConfig = Config['vpn'];
export type AuthConfig = Config['auth'];
export type OidcConfig = NonNullable<AuthConfig['oidc']>;
