import { gatewayCommonName } from '../lib/names.js';
import type { AccessClient, AccessRule, ResolvedRule, Subject } from '../access/types.js';
import type { DeviceCert, TxStore, User } from '../store/types.js';
import type { GroupService } from './groups.js';

/** A device that may connect now, with what subjects are matched against. */
export interface ConnectableDevice {
  commonName: string;
  address: string;
  kind: 'client' | 'gateway';
  owner: User;
  /** Names of the gateways (GatewayRecord) whose certificate this is; empty for clients. */
  gatewayNames: string[];
}

/**
 * Whether a subject names this device. Users and groups match their owner's client devices; a
 * gateway (which carries a whole office LAN) only by its `gateway` subject or `everyone`, never by
 * its owner's user or groups: a rule written for a person must not open the office LAN.
 */
export function subjectMatches(
  subject: Subject,
  device: ConnectableDevice,
  groupsOfOwner: Set<string>,
): boolean {
  switch (subject.kind) {
    case 'everyone':
      return true;
    case 'gateway':
      return (
        device.kind === 'gateway' &&
        (device.gatewayNames.includes(subject.name) || device.commonName === subject.name)
      );
    case 'user':
      return device.kind === 'client' && device.owner.name === subject.name;
    case 'group':
      return device.kind === 'client' && groupsOfOwner.has(subject.name);
  }
}

/** The subject of `rule` that names a user (as a person: their client devices), if any. */
export function matchingUserSubject(rule: AccessRule, user: User, groups: Set<string>): Subject | undefined {
  return rule.subjects.find(
    (s) =>
      s.kind === 'everyone' ||
      (s.kind === 'user' && s.name === user.name) ||
      (s.kind === 'group' && groups.has(s.name)),
  );
}

/**
 * Every device that may connect at `now`: a valid, unexpired, not-yet-superseded-away client or
 * gateway certificate whose owner is enabled, with a tunnel address. A renewed device shows once
 * (both certificates share the common name and the address).
 */
export async function connectableDevices(
  store: TxStore,
  now: Date,
  given?: readonly DeviceCert[],
  /** The address table (common name -> address) when the caller has just read it in this transaction. */
  held?: ReadonlyMap<string, string>,
): Promise<ConnectableDevice[]> {
  const valid = given ?? (await validCerts(store, now));
  const t = now.getTime();
  // A gateway's device is its record's certificate, or any gateway certificate with its common name:
  // the record names the serial only once provisioning is done, but the device connects (and must be in
  // its rules) as soon as the certificate step issued it; a re-provision or renewal replaces the serial.
  const gatewaysByCert = new Map<string, string[]>();
  const gatewaysByName = new Map<string, string[]>();
  const add = (m: Map<string, string[]>, k: string, name: string) => m.set(k, [...(m.get(k) ?? []), name]);
  for (const g of await store.listGateways()) {
    if (g.certSerial) add(gatewaysByCert, g.certSerial, g.name);
    add(gatewaysByName, gatewayCommonName(g.name), g.name);
  }
  const users = new Map((await store.listUsers()).map((u) => [u.id, u]));
  const addresses = held ?? new Map((await store.listAddresses()).map((a) => [a.commonName, a.address]));
  const byName = new Map<string, ConnectableDevice>();
  for (const c of valid) {
    if (c.notBefore.getTime() > t) continue;
    const owner = c.ownerId === null ? undefined : users.get(c.ownerId);
    if (!owner || owner.disabled) continue;
    const address = addresses.get(c.commonName);
    if (!address) continue;
    const prev = byName.get(c.commonName);
    const gatewayNames =
      c.kind === 'gateway'
        ? [
            ...new Set([
              ...(prev?.gatewayNames ?? []),
              ...(gatewaysByCert.get(c.serial) ?? []),
              ...(gatewaysByName.get(c.commonName) ?? []),
            ]),
          ]
        : [];
    byName.set(c.commonName, {
      commonName: c.commonName,
      address,
      kind: c.kind === 'gateway' ? 'gateway' : 'client',
      owner,
      gatewayNames,
    });
  }
  return [...byName.values()].sort((a, b) => a.commonName.localeCompare(b.commonName));
}

/**
 * Valid, unexpired client and gateway certificates (the server's own is not a device), newest first.
 * Only the columns the bundle uses: the full list (PEM included) of 10,000 certificates on every
 * publication was most of `serve`'s memory growth under load.
 */
export async function validCerts(store: TxStore, now: Date): Promise<DeviceCert[]> {
  const t = now.getTime();
  return (await store.listDeviceCerts()).filter((c) => c.notAfter.getTime() > t);
}

/** The bundle's two lists: the devices that may connect, and each rule with its subjects as addresses. */
export async function resolveBundle(
  rules: readonly AccessRule[],
  devices: readonly ConnectableDevice[],
  groups: Pick<GroupService, 'bulkGroupsOf'>,
  /** The transaction handle when called inside one. */
  from?: TxStore,
): Promise<{ clients: AccessClient[]; rules: ResolvedRule[] }> {
  const lookup = await groups.bulkGroupsOf(from);
  const groupsOf = new Map<number, Set<string>>();
  const ownerGroups = async (u: User): Promise<Set<string>> => {
    let g = groupsOf.get(u.id);
    if (!g) groupsOf.set(u.id, (g = await lookup(u)));
    return g;
  };
  // Index the rules by subject once, then find each device's rules by lookups (devices x their groups),
  // not by testing every subject of every rule against every device (rules x devices).
  const byUser = new Map<string, number[]>();
  const byGroup = new Map<string, number[]>();
  const byGateway = new Map<string, number[]>();
  const forEveryone: number[] = [];
  const add = (m: Map<string, number[]>, k: string, i: number) => m.set(k, [...(m.get(k) ?? []), i]);
  rules.forEach((r, i) => {
    for (const s of r.subjects) {
      if (s.kind === 'everyone') forEveryone.push(i);
      else if (s.kind === 'user') add(byUser, s.name, i);
      else if (s.kind === 'group') add(byGroup, s.name, i);
      else add(byGateway, s.name, i);
    }
  });
  const clientsOf: string[][] = rules.map(() => []);
  for (const d of devices) {
    const hit = new Set<number>(forEveryone);
    if (d.kind === 'gateway') {
      for (const name of [...d.gatewayNames, d.commonName])
        for (const i of byGateway.get(name) ?? []) hit.add(i);
    } else {
      for (const i of byUser.get(d.owner.name) ?? []) hit.add(i);
      for (const g of await ownerGroups(d.owner)) for (const i of byGroup.get(g) ?? []) hit.add(i);
    }
    for (const i of hit) clientsOf[i]!.push(d.address);
  }
  return {
    clients: devices.map((d) => ({ commonName: d.commonName, address: d.address })),
    rules: rules.map((r, i) => ({
      name: r.name,
      clients: clientsOf[i]!,
      destinations: r.destinations,
      protocol: r.protocol ?? 'any',
      ports: r.ports ?? [],
    })),
  };
}
