import type { CrlPublisher, RevocationBundle } from '../openvpn/revocation-bundle.js';
import { AppError } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { crlIssuers } from '../pki/index.js';
import { KubeApiError, refOf, type KubeApi, type KubeObject } from './kube-api.js';
import { crlSecret } from './crl-secret.js';
import { checkOwner, crlKeyIds, foreignOwner, ownerOf } from './ownership.js';
import { bundleFromSecret } from './secret-watch-source.js';

const log = logger.child({ module: 'cluster.publisher' });

/** Conflicts tolerated before giving up: each one means another writer stored a newer CRL meanwhile. */
const MAX_ATTEMPTS = 10;

/** The bundle a podgate-crl Secret holds, or undefined when it holds none that reads (then it is replaced). */
function storedBundle(secret: KubeObject | undefined): RevocationBundle | undefined {
  if (!secret) return undefined;
  try {
    return bundleFromSecret(secret);
  } catch {
    return undefined;
  }
}

/**
 * Whether the Secret's CRL comes from another CA altogether than the one about to be published: both
 * are readable CRLs and share no issuer. CRL numbers only order the CRLs of one CA (set); during a
 * rotation the sets overlap, so the numbers still count.
 */
function fromAnotherCa(live: RevocationBundle, next: RevocationBundle): boolean {
  const liveIssuers = crlIssuers(live.crlPem);
  const nextIssuers = new Set(crlIssuers(next.crlPem));
  return liveIssuers.length > 0 && nextIssuers.size > 0 && !liveIssuers.some((i) => nextIssuers.has(i));
}

export interface CrlApplyResult {
  stored: KubeObject;
  written: boolean;
  /** Set when the Secret was left alone because it holds this higher CRL number of the same CA (set). */
  newerCrlNumber?: number;
}

/**
 * Server-side applies a podgate-crl Secret unless the Secret already holds a NEWER CRL. Several writers
 * publish (web app requests, CLI commands, deploy) and can finish out of order: the one that built its
 * bundle before another's revocation must not replace that newer CRL with its older one. The apply
 * carries the resourceVersion that was read as a precondition, so a write in between answers 409 and the
 * check runs again. Returns the Secret as stored, whether this call wrote it, and the newer number
 * that kept it from writing.
 *
 * A Secret of another manager's CA (its `podgate.io/ca-key-id` annotation, or for an unmarked Secret the
 * CRL's issuer, is none of this bundle's CAs) is refused with a 409 (ownership.ts), unless `takeOver`:
 * then it is replaced whatever its number.
 *
 * Limit: when the Secret does not exist yet (before the first deploy) the create has no precondition.
 */
export async function applyCrlSecret(
  kube: KubeApi,
  secret: KubeObject,
  o: { takeOver?: boolean } = {},
): Promise<CrlApplyResult> {
  const next = bundleFromSecret(secret);
  if (!next) throw new Error('applyCrlSecret: the Secret holds no revocation bundle'); // a caller's bug
  const crlNumber = next.crlNumber;
  const mine = crlKeyIds(next.crlPem);
  let newerCrlNumber: number | undefined;
  const r = await applyUnlessNewer(kube, secret, {
    what: `CRL ${crlNumber}`,
    holdsNewer: (live) => {
      const held = storedBundle(live);
      checkOwner(live, mine, o.takeOver);
      const foreign = held && !ownerOf(live) && fromAnotherCa(held, next);
      if (foreign && !o.takeOver) {
        throw foreignOwner(
          `Secret ${secret.metadata.namespace}/${secret.metadata.name}`,
          crlKeyIds(held.crlPem)[0] ?? '?',
          mine,
        );
      }
      if (held && held.crlNumber > crlNumber && !o.takeOver) {
        log.debug({ crlNumber, newerCrlNumber: held.crlNumber }, 'CRL Secret already holds a newer CRL');
        newerCrlNumber = held.crlNumber;
        return true;
      }
      newerCrlNumber = undefined;
      return false;
    },
  });
  return !r.written && newerCrlNumber !== undefined ? { ...r, newerCrlNumber } : r;
}

/**
 * Server-side applies `secret` unless the live one holds something newer (`holdsNewer`, which may also
 * throw to refuse), with the resourceVersion that was read as a precondition: a write in between
 * answers 409 and the check runs again (up to MAX_ATTEMPTS). The pattern every versioned Secret podgate
 * publishes follows (the CRL, the access bundle). Limit: creating a Secret that does not exist yet has
 * no precondition.
 */
export async function applyUnlessNewer(
  kube: KubeApi,
  secret: KubeObject,
  o: { what: string; holdsNewer: (live: KubeObject) => boolean },
): Promise<{ stored: KubeObject; written: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const live = await kube.get(refOf(secret));
    if (live && o.holdsNewer(live)) return { stored: live, written: false };
    const desired = structuredClone(secret);
    if (live?.metadata.resourceVersion) desired.metadata.resourceVersion = live.metadata.resourceVersion;
    try {
      return { stored: await kube.apply(desired), written: true };
    } catch (err) {
      if (!(err instanceof KubeApiError && err.kubeStatus === 409)) throw err;
      if (attempt >= MAX_ATTEMPTS) {
        throw new AppError(
          409,
          'conflict',
          `the ${secret.metadata.name ?? 'podgate'} Secret kept changing while ${o.what} was published (${attempt} attempts); publish again`,
          { cause: err },
        );
      }
      log.debug({ what: o.what, attempt }, 'Secret changed meanwhile; checking again');
    }
  }
}

/**
 * A publish the Secret refused because it holds a higher CRL number of the same CA (set). Benign when
 * this manager's store has reached that number too (another publisher of the same store was faster);
 * otherwise the store is behind the cluster (restored from an older backup) and its revocations are not
 * in force: RevocationService reports it as an error.
 */
export class CrlNumberBehind extends AppError {
  constructor(
    readonly crlNumber: number,
    readonly newerCrlNumber: number,
    namespace: string,
  ) {
    super(
      409,
      'crl_number_behind',
      `CRL #${crlNumber} was not published: the podgate-crl Secret in ${namespace} holds #${newerCrlNumber}, a higher number ` +
        'of the same CA. If this data dir was restored from a backup, restore it again with ' +
        `\`--crl-number-above ${newerCrlNumber}\`; until then the agent keeps the CRL it has and new revocations are not in force`,
      { field: 'crl-number-above' },
    );
  }
}

/**
 * Cluster mode's publisher: server-side applies the `podgate-crl` Secret (crl.pem + revocations.json)
 * that the agent sidecar watches. RevocationService calls it after every revocation and CRL re-sign.
 * A bundle older than the one the Secret holds is not written and throws CrlNumberBehind.
 */
export class SecretCrlPublisher implements CrlPublisher {
  readonly name = 'k8s-secret';
  /** `kube` may be a factory: the client is then made on the first publish (no cluster needed before). */
  constructor(
    private readonly kube: KubeApi | (() => KubeApi),
    private readonly namespace: string,
  ) {}

  async publish(bundle: RevocationBundle): Promise<void> {
    const kube = typeof this.kube === 'function' ? this.kube() : this.kube;
    const { stored, written, newerCrlNumber } = await applyCrlSecret(kube, crlSecret(this.namespace, bundle));
    if (newerCrlNumber !== undefined)
      throw new CrlNumberBehind(bundle.crlNumber, newerCrlNumber, this.namespace);
    if (written) {
      log.info(
        { crlNumber: bundle.crlNumber, resourceVersion: stored.metadata.resourceVersion },
        'CRL Secret published',
      );
    }
  }
}
