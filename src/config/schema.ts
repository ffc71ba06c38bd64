import { z } from 'zod';
import { NAME_PATTERN } from '../lib/names.js';
import { parseCidr, isIp } from '../lib/cidr.js';

/** A CIDR string, checked and normalised by lib/cidr (host bits set is an error). */
const cidr = z.string().superRefine((value, ctx) => {
  try {
    parseCidr('value', value);
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
const name = z.string().regex(NAME_PATTERN, 'must match ^[a-z0-9][a-z0-9._-]{0,63}$');
const port = z.number().int().min(1).max(65535);
/** A Kubernetes namespace name: a DNS-1123 label (what the API server accepts). */
const namespaceName = z
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
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    web: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Trust X-Forwarded-Proto from a reverse proxy (cookies become Secure when it says https). */
        trustProxy: z.boolean().default(false),
        /** TLS certificate and key files; when both are set the web app serves HTTPS. */
        tlsCertFile: z.string().optional(),
        tlsKeyFile: z.string().optional(),
        sessionIdleMinutes: z.number().int().min(1).default(30),
        sessionAbsoluteHours: z.number().int().min(1).default(12),
      })
      .strict()
      .default({}),
    ca: z
      .object({
        commonName: z.string().min(1).max(64).default('podgate CA'),
        keyType: z.enum(['rsa-3072', 'ec-p384']).default('rsa-3072'),
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
        controlChannel: z.enum(['tls-crypt-v2', 'tls-crypt']).default('tls-crypt-v2'),
        /** MASQUERADE the client subnet on the server host (`server run`); the pod image always does. */
        nat: z.boolean().default(false),
        /** Drop privileges after start (local mode); empty disables the drop. */
        user: z.string().default('nobody'),
        group: z.string().default('nogroup'),
        /** Office LAN ranges routed through a gateway; checked for overlaps with cluster ranges. */
        officeLans: z.array(cidr).default([]),
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
