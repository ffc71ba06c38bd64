import { AppError } from '../lib/errors.js';

/** The parts of a Kubernetes object podgate reads or writes; everything else passes through untouched. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    managedFields?: unknown[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface KubeList {
  items: KubeObject[];
  /** The list's resourceVersion: where a watch continues from. */
  resourceVersion: string;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** One request as the API server's authorizer sees it (a SelfSubjectAccessReview's resourceAttributes). */
export interface AccessCheck {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchHandle {
  stop(): void;
}

/**
 * Every Kubernetes call podgate makes, behind one small interface so that discovery, deploy and the
 * agent can be tested without a cluster. The real implementation is `createKubeApi` (kube-client.ts);
 * tests point that same implementation at an in-process fake API server.
 */
export interface KubeApi {
  /** One object, or undefined when it (or its API group/version) does not exist. */
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  /** All objects of a kind; undefined when the API group/version or kind is not served. */
  list(
    apiVersion: string,
    kind: string,
    opts?: { namespace?: string; labelSelector?: string; fieldSelector?: string },
  ): Promise<KubeList | undefined>;
  /** Server-side apply with field manager `podgate` and force; returns the object as stored. */
  apply(obj: KubeObject): Promise<KubeObject>;
  /**
   * POST: creates the object, failing with 409 AlreadyExists when it exists (the create-if-absent step
   * of leader election; everything else is applied). Optional: fakes of older suites lack it.
   */
  create?(obj: KubeObject): Promise<KubeObject>;
  /** POST with `dryRun=All`: nothing is stored; validation errors come back as KubeApiError. */
  createDryRun(obj: KubeObject): Promise<KubeObject>;
  /**
   * Whether the caller may make `check` (SelfSubjectAccessReview); undefined when the review API cannot
   * answer (not served, an error): the caller then learns from the real request's 403 instead.
   */
  canI(check: AccessCheck): Promise<boolean | undefined>;
  /** The user name the API server sees (SelfSubjectReview); undefined when it cannot say. */
  whoAmI(): Promise<string | undefined>;
  /**
   * Optional: learns in advance what the first Secret apply would ask the API server first (API
   * discovery), so a later apply is one request. Errors are the caller's to ignore.
   */
  warm?(): Promise<void>;
  /** JSON merge patch (RFC 7386) of an existing object. */
  mergePatch(ref: ObjectRef, patch: Record<string, unknown>): Promise<KubeObject>;
  /**
   * Watches objects of a kind (in `opts.namespace`, or cluster-wide) from `resourceVersion`, with
   * bookmarks. `onDone` is called once when the stream ends, fails or is stopped; the caller re-lists
   * and re-watches (`list-watch.ts`).
   */
  watch(
    apiVersion: string,
    kind: string,
    opts: {
      namespace?: string;
      fieldSelector?: string;
      resourceVersion: string;
      /** Asks the server to end the watch after this long (it sends a bookmark ~2 s before). */
      timeoutSeconds?: number;
    },
    onEvent: (type: WatchEventType, obj: KubeObject) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle>;
}

/**
 * A failed Kubernetes call. `kubeStatus` is the API server's HTTP code (0 when none), `reason` its
 * Status reason (Forbidden, NotFound, Conflict, Invalid, Timeout, Expired...), `kubeMessage` its message.
 * The AppError status is 502 (the upstream failed), except 422 Invalid which stays a 400.
 */
export class KubeApiError extends AppError {
  constructor(
    readonly kubeStatus: number,
    readonly reason: string,
    readonly kubeMessage: string,
    readonly what: string,
    cause?: unknown,
  ) {
    super(
      kubeStatus === 422 ? 400 : 502,
      'kube_api',
      `${what}: ${describe(kubeStatus, reason)}: ${kubeMessage}`,
      {
        cause,
      },
    );
  }
}

function describe(status: number, reason: string): string {
  if (status === 0) return reason || 'no response';
  return reason ? `${status} ${reason}` : String(status);
}

/** "Deployment middleware/podgate-openvpn" — how objects are named in progress lines and errors. */
export function refText(ref: { kind: string; name?: string; namespace?: string }): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name ?? '?'}`;
}

export function refOf(obj: KubeObject): ObjectRef {
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    name: obj.metadata.name ?? '',
    namespace: obj.metadata.namespace,
  };
}
