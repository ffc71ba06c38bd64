import { Router, type Request, type Response } from 'express';
import { AppError, NotFound } from '../../lib/errors.js';
import type { RevocationReason } from '../../store/types.js';
import { NotConnected } from '../admin-data.js';
import { userView, type DeviceView } from '../actions.js';
import { humanReason } from '../helpers.js';
import { csrfProtect, requireAdmin } from '../auth.js';
import {
  auditQuery,
  certQuery,
  createUserBody,
  parse,
  REVOCATION_REASONS,
  revokeBody,
} from '../validation.js';
import type { RouteDeps } from './api.js';
import { formError, notice, type FormError } from './pages-user.js';
import '../types.js';

/** Builds `?a=b&...` for links that keep the table's filters while changing one thing. */
function link(base: Record<string, unknown>, change: Record<string, unknown>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...base, ...change }))
    if (v !== undefined && v !== '' && v !== null) p.set(k, String(v));
  return `?${p.toString()}`;
}

/**
 * Table rows with every display string computed once here: the table is the busiest page, and plain
 * fields render about twice as fast as helper calls per cell.
 */
function certRows(items: DeviceView[], at: Date, warnDays: number): Record<string, unknown>[] {
  const soonLimit = at.getTime() + warnDays * 86_400_000;
  return items.map((c) => {
    const expires = c.notAfter.toISOString();
    const created = c.createdAt.toISOString();
    return {
      serial: c.serial,
      commonName: c.commonName,
      kindBadge: c.kind === 'client' ? '' : c.kind,
      owner: c.owner ?? '—',
      status: c.status,
      reason: c.revocationReason ? humanReason(c.revocationReason) : '',
      expiresIso: expires,
      expiresDay: expires.slice(0, 10),
      createdIso: created,
      createdDay: created.slice(0, 10),
      soon: c.status === 'valid' && c.notAfter.getTime() <= soonLimit,
      valid: c.status === 'valid',
    };
  });
}

/** Admin pages. Every route is admin-only; state changes need the CSRF token. */
export function adminPages(deps: RouteDeps): Router {
  const r = Router();
  r.use(requireAdmin, csrfProtect);

  r.get('/', (_req, res) => res.redirect(303, '/admin/certs'));

  certPages(r, deps);
  userPages(r, deps);
  sessionPages(r, deps);
  recordPages(r, deps);
  clusterPages(r, deps);
  return r;
}

/** The certificate table (filter, sort, page) and the revoke confirmation. */
function certPages(r: Router, { actions, now }: RouteDeps): void {
  r.get('/certs', async (req, res) => {
    const q = parse(certQuery, req.query);
    const result = actions.listCerts(q);
    const base = {
      q: q.q,
      status: q.status,
      expiring: q.expiring,
      sort: q.sort,
      order: q.order,
      perPage: q.perPage === 50 ? undefined : q.perPage,
    };
    const columns = (['commonName', 'owner', 'status', 'notAfter', 'createdAt'] as const).map((key) => ({
      key,
      label: {
        commonName: 'Name',
        owner: 'Owner',
        status: 'Status',
        notAfter: 'Expires',
        createdAt: 'Created',
      }[key],
      active: q.sort === key,
      order: q.sort === key ? q.order : undefined,
      ariaSort: q.sort === key ? (q.order === 'asc' ? 'ascending' : 'descending') : 'none',
      href: link(base, {
        sort: key,
        order: q.sort === key && q.order === 'asc' ? 'desc' : 'asc',
        page: undefined,
      }),
    }));
    res.render('admin/certs', {
      title: 'Certificates',
      nav: 'certs',
      ...result,
      rows: certRows((await result).items, now(), actions.expiryWarningDays),
      warnDays: actions.expiryWarningDays,
      q,
      columns,
      notice: notice(req),
      prev: (await result).page > 1 ? link(base, { page: (await result).page - 1 }) : null,
      next:
        (await result).page < (await result).pages
          ? link(base, { page: (await result).page + 1, ...((await result).nextCursor ? { cursor: (await result).nextCursor } : {}) })
          : null,
      expiringChecked: q.expiring === '30' || q.expiring === 'on',
    });
  });

  r.get('/certs/:serial/revoke', (req, res) => {
    res.render('admin/cert-revoke', {
      title: 'Revoke certificate',
      nav: 'certs',
      cert: actions.getCert(String(req.params.serial)),
      reasons: REVOCATION_REASONS,
    });
  });

  r.post('/certs/:serial/revoke', async (req, res) => {
    const { reason } = parse(revokeBody, req.body);
    await actions.revokeCert(req.auth!.user, String(req.params.serial), reason as RevocationReason);
    res.redirect(303, '/admin/certs?done=revoked');
  });
}

/** Users: list, create, role, disable (with the certificates that go with it), enable. */
function userPages(r: Router, { actions, admin }: RouteDeps): void {
  const usersPage = async (req: Request, res: Response, status = 200, form?: FormError): Promise<void> => {
    const { groups, of } = admin.groups();
    const groupNames = (await groups).map((g) => g.name);
    res.status(status).render('admin/users', {
      title: 'Users',
      nav: 'users',
      users: (await admin.users()).map(async (u) => {
        const m = await of(u);
        return {
          ...userView(u),
          localGroups: m.local,
          ssoGroups: m.sso,
          joinable: groupNames.filter((g) => !m.local.includes(g)),
        };
      }),
      groups,
      me: req.auth!.user.name,
      notice: notice(req),
      form,
    });
  };

  r.get('/users', (req, res) => usersPage(req, res));

  r.post('/users', async (req, res) => {
    const raw = req.body as Record<string, unknown>;
    try {
      await actions.createUser(req.auth!.user, parse(createUserBody, raw));
    } catch (err) {
      const form = formError(err, raw);
      if (!form) throw err;
      return usersPage(req, res, (err as AppError).status, form);
    }
    res.redirect(303, '/admin/users?done=user-created');
  });

  r.post('/users/:name/role', async (req, res) => {
    const role = (req.body as Record<string, unknown>).role === 'admin' ? 'admin' : 'user';
    await actions.updateUser(req.auth!.user, String(req.params.name), { role });
    res.redirect(303, '/admin/users?done=user-updated');
  });

  r.get('/users/:name/disable', async (req, res) => {
    const user = (await admin.users()).find((u) => u.name === String(req.params.name));
    if (!user) throw new NotFound('user not found');
    res.render('admin/user-disable', {
      title: 'Disable user',
      nav: 'users',
      target: userView(user),
      certs: admin.validCertsOf(user.id),
    });
  });

  r.post('/users/:name/disable', async (req, res) => {
    await actions.updateUser(req.auth!.user, String(req.params.name), { disabled: true });
    res.redirect(303, '/admin/users?done=user-disabled');
  });

  r.post('/users/:name/enable', async (req, res) => {
    await actions.updateUser(req.auth!.user, String(req.params.name), { disabled: false });
    res.redirect(303, '/admin/users?done=user-enabled');
  });
}

/** Live VPN sessions read from the management interface, and disconnect. */
function sessionPages(r: Router, { admin }: RouteDeps): void {
  r.get('/sessions', async (req, res) => {
    let connected = admin.sessionsConnected;
    let sessions: unknown[] = [];
    let error: string | undefined;
    if (connected) {
      try {
        sessions = await admin.listSessions();
      } catch (err) {
        // A provider that finds no server (no management socket yet) is "not connected", not an error.
        if (err instanceof NotConnected) connected = false;
        else error = err instanceof AppError ? err.message : 'the management interface did not answer';
      }
    }
    res.render('admin/sessions', {
      title: 'Live sessions',
      nav: 'sessions',
      connected,
      sessions,
      error,
      notice: notice(req),
    });
  });

  r.post('/sessions/:cid/disconnect', async (req, res) => {
    await admin.disconnect(req.auth!.user.name, String(req.params.cid));
    res.redirect(303, '/admin/sessions?done=disconnected');
  });
}

/** Read-only records: the audit log, the current CRL, the known gateways. */
function recordPages(r: Router, { admin }: RouteDeps): void {
  r.get('/audit', async (req, res) => {
    const q = parse(auditQuery, req.query);
    const data = admin.audit(q.page, q.action);
    res.render('admin/audit', {
      title: 'Audit log',
      nav: 'audit',
      ...data,
      action: q.action,
      prev: q.page > 1 ? link({ action: q.action }, { page: q.page - 1 }) : null,
      next: (await data).hasNext ? link({ action: q.action }, { page: q.page + 1 }) : null,
    });
  });

  r.get('/crl', (_req, res) => {
    res.render('admin/crl', { title: 'CRL', nav: 'crl', crl: admin.crl() });
  });

  r.get('/gateways', (_req, res) => {
    res.render('admin/gateways', { title: 'Gateways', nav: 'gateways', gateways: admin.gateways() });
  });
}

/** The cluster: discovery, manifests download, live status and the deploy started from the page. */
function clusterPages(r: Router, { admin, deploys }: RouteDeps): void {
  r.get('/cluster', async (req, res) => {
    const deploy = deploys.get();
    // Reading live status talks to the API server: only when asked (?status=1).
    let status: { lines: string[] } | undefined;
    let statusError: string | undefined;
    if (req.query.status === '1' && admin.clusterConnected) {
      try {
        status = await admin.clusterStatus();
      } catch (err) {
        statusError = err instanceof AppError ? err.message : 'the cluster did not answer';
      }
    }
    res.render('admin/cluster', {
      title: 'Cluster',
      nav: 'cluster',
      cluster: admin.clusterView(),
      status,
      statusError,
      deploy,
      running: deploy.state === 'running',
      // Without JavaScript the page polls by refreshing itself while a deploy runs.
      refresh: deploy.state === 'running' ? 2 : undefined,
      notice: notice(req),
    });
  });

  r.post('/cluster/discover', async (_req, res) => {
    await admin.requireCluster().discover();
    res.redirect(303, '/admin/cluster?done=discovered');
  });

  r.get('/cluster/manifests.yaml', async (req, res) => {
    const text = await admin.manifestsDownload(req.auth!.user.name);
    res
      .set('Content-Disposition', 'attachment; filename="podgate-manifests.yaml"')
      .type('application/yaml')
      .send(text);
  });

  r.post('/cluster/deploy', (req, res) => {
    admin.startDeploy(deploys, req.auth!.user.name);
    res.redirect(303, '/admin/cluster?done=deploy-started');
  });
}
