/**
 * Which podgate manager owns the server's objects in a namespace. Two managers (two data dirs, two CAs)
 * pointed at one namespace would replace each other's server Secret and CRL every few minutes, each
 * breaking the other's profiles; so deploy marks the server Secret, the CRL Secret, the ConfigMap and
 * the Deployment with the key id of the CA that issues (`podgate.io/ca-key-id`, the id `podgate ca
 * status` shows), and a manager whose CAs do not include that id refuses to replace them unless told
 * to take over (`podgate k8s deploy --take-over`).
 */
import { Conflict } from '../lib/errors.js';
import { crlIssuers } from '../pki/index.js';
import type { KubeObject } from './kube-api.js';

export const OWNER_ANNOTATION = 'podgate.io/ca-key-id';

/** The authority key ids of the CRLs in `crlPem`, the issuing CA's first (one CRL per trusted CA). */
export function crlKeyIds(crlPem: string): string[] {
  return crlIssuers(crlPem)
    .map((i) => keyIdentifier(i.slice(i.indexOf('/') + 1)))
    .filter((id) => id !== '');
}

/**
 * The keyIdentifier inside an AuthorityKeyIdentifier value (hex DER: SEQUENCE { [0] keyIdentifier … }),
 * which is the issuing CA's subject key id (`podgate ca status`); other shapes are returned as they are.
 */
function keyIdentifier(hex: string): string {
  const b = Buffer.from(hex, 'hex');
  if (b.length >= 4 && b[0] === 0x30 && b[1] === b.length - 2 && b[2] === 0x80 && 4 + b[3]! <= b.length)
    return b.subarray(4, 4 + b[3]!).toString('hex');
  return hex;
}

/** Returns `obj` marked as owned by `keyId` (unchanged when there is none). */
export function markOwner(obj: KubeObject, keyId: string | undefined): KubeObject {
  if (!keyId) return obj;
  obj.metadata.annotations = {
    ...(obj.metadata.annotations as Record<string, string>),
    [OWNER_ANNOTATION]: keyId,
  };
  return obj;
}

/** The owner a live object is marked with, if any. */
export function ownerOf(obj: KubeObject | undefined): string | undefined {
  return (obj?.metadata.annotations as Record<string, string> | undefined)?.[OWNER_ANNOTATION];
}

const short = (id: string) => `${id.slice(0, 16)}…`;

/** The 409 a manager gets for objects another CA's manager owns: names the annotation and the way out. */
export function foreignOwner(what: string, owner: string, mine: readonly string[]): Conflict {
  return new Conflict(
    `${what} is marked ${OWNER_ANNOTATION}=${owner}: it belongs to a podgate manager with another CA ` +
      `(this manager's CA key id is ${mine[0] ? short(mine[0]) : 'unknown'}); nothing was replaced. ` +
      'Two managers must not share a namespace: set another kubernetes.namespace, or take the server over ' +
      "deliberately with `podgate k8s deploy --take-over` (the other manager's profiles stop working)",
    'kubernetes.namespace',
  );
}

/**
 * Throws foreignOwner when `live` is marked with a key id that is none of `mine` (this manager's CAs:
 * the issuing one and, during a rotation, the previous one). Unmarked objects (older podgate) pass.
 */
export function checkOwner(live: KubeObject | undefined, mine: readonly string[], takeOver = false): void {
  const owner = ownerOf(live);
  if (!live || takeOver || !owner || mine.length === 0 || mine.includes(owner)) return;
  const ns = live.metadata.namespace ? `${live.metadata.namespace}/` : '';
  throw foreignOwner(`${live.kind} ${ns}${live.metadata.name}`, owner, mine);
}
