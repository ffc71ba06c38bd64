import { Router } from 'express';
import { BadRequest } from '../../lib/errors.js';
import { parseSince, sessionsCsv, type UsageService } from '../../services/usage.js';
import { requireAdmin, requireUser } from '../auth.js';
import { usageChartSvg } from '../usage-chart.js';
import { documentedRouter } from '../api-router.js';
import '../types.js';

function optUser(v: unknown): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(v))
    throw new BadRequest('user must be a user name', 'user');
  return v;
}

/** Session history: the admin usage page (chart + totals), its CSV, and a user's own sessions as JSON. */
export function usageRoutes(usage: UsageService, now: () => Date): Router {
  const r = documentedRouter();
  r.get('/admin/usage', requireAdmin, async (req, res) => {
    const user = optUser(req.query.user);
    const report = usage.report(30, user);
    const chart = usageChartSvg((await report).days);
    res.render('admin/usage', {
      title: 'Usage',
      nav: 'usage',
      user,
      report,
      chartBytes: chart.bytes,
      chartSessions: chart.sessions,
      recent: usage.history({ ...(user ? { user } : {}), limit: 50 }),
    });
  });
  r.get('/admin/usage.csv', requireAdmin, async (req, res) => {
    const user = optUser(req.query.user);
    const since = parseSince('since', typeof req.query.since === 'string' ? req.query.since : '30d', now());
    const rows = await usage.history({ ...(user ? { user } : {}), since, limit: 100000 });
    res
      .set('Content-Disposition', 'attachment; filename="podgate-sessions.csv"')
      .type('text/csv; charset=utf-8')
      .send(sessionsCsv(rows));
  });
  r.get('/api/v1/sessions/history', requireUser, (req, res) => {
    const me = req.auth!.user;
    const asked = optUser(req.query.user);
    const user = me.role === 'admin' ? asked : me.name;
    const since =
      typeof req.query.since === 'string' ? parseSince('since', req.query.since, now()) : undefined;
    res.json({
      items: usage.history({ ...(user ? { user } : {}), ...(since ? { since } : {}), limit: 1000 }),
    });
  });
  return r;
}
