import express, { Router, type Request, type Response } from 'express';
import { AppError, Forbidden } from '../../lib/errors.js';
import type { AppContext } from '../../services/context.js';
import { csrfProtect, requireAdmin, requireUser } from '../auth.js';
import { checkQuery, groupBody, memberBody, nameField, parse, whoQuery } from '../validation.js';
import { formError, notice, type FormError } from './pages-user.js';
import { documentedRouter } from '../api-router.js';
import '../types.js';

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'];
const dryRun = (v: unknown) => v === 'true' || v === '1' || v === 'on';

/** The access rules and groups: JSON under /api/v1 (admins; "mine" for everyone), the Access and My access pages. */
export function accessRouter(ctx: AppContext): Router {
  const r = documentedRouter();
  r.use(['/api/v1/access', '/api/v1/groups'], express.text({ type: YAML_TYPES, limit: '256kb' }));
  r.use(['/api/v1/access', '/api/v1/groups', '/admin/access', '/admin/groups', '/access'], csrfProtect);
  accessApi(r, ctx);
  groupsApi(r, ctx);
  accessPages(r, ctx);
  groupPages(r, ctx);
  return r;
}

function accessApi(r: Router, ctx: AppContext): void {
  r.get('/api/v1/access', requireAdmin, (req, res) => {
    if (req.query.format === 'yaml') return res.type('application/yaml').send(ctx.access.exportYaml());
    res.json({ ...ctx.access.mode(), version: ctx.access.version(), rules: ctx.access.rules() });
  });
  r.put('/api/v1/access', requireAdmin, async (req, res) => {
    const input = typeof req.body === 'string' ? ctx.access.parseYaml(req.body) : req.body;
    const isDry = dryRun(req.query.dryRun);
    const diff = await ctx.access.apply({ actor: req.auth!.user.name, input, dryRun: isDry });
    res.json({ dryRun: isDry, ...diff, version: ctx.access.version() });
  });
  r.get('/api/v1/access/check', requireUser, async (req, res) => {
    const q = parse(checkQuery, req.query);
    // a developer may ask about themselves; anyone else's access is for admins
    if (req.auth!.user.role !== 'admin' && q.user !== req.auth!.user.name)
      throw new Forbidden('only admins may check the access of another user');
    res.json(await ctx.accessQueries.check(q.user, q.destination, ctx.clusterObjects));
  });
  r.get('/api/v1/access/who', requireAdmin, async (req, res) => {
    const q = parse(whoQuery, req.query);
    res.json(await ctx.accessQueries.whoCanReach(q.destination, ctx.clusterObjects));
  });
  r.get('/api/v1/access/users/:name', requireAdmin, (req, res) => {
    res.json({ user: String(req.params.name), items: ctx.accessQueries.reachOf(String(req.params.name)) });
  });
  r.get('/api/v1/access/mine', requireUser, async (req, res) => {
    res.json({ mode: (await ctx.access.mode()).mode, items: ctx.accessQueries.reachOf(req.auth!.user.name) });
  });
}

function groupsApi(r: Router, ctx: AppContext): void {
  r.get('/api/v1/groups', requireAdmin, (_req, res) => {
    res.json({ items: ctx.groups.list() });
  });
  r.post('/api/v1/groups', requireAdmin, async (req, res) => {
    const body = parse(groupBody, req.body);
    res.status(201).json({ group: await ctx.groups.create({ actor: req.auth!.user.name, ...body }) });
  });
  r.get('/api/v1/groups/:name', requireAdmin, (req, res) => {
    res.json({ group: ctx.groups.get(String(req.params.name)) });
  });
  r.delete('/api/v1/groups/:name', requireAdmin, async (req, res) => {
    await ctx.groups.remove({ actor: req.auth!.user.name, name: String(req.params.name) });
    res.status(204).end();
  });
  r.post('/api/v1/groups/:name/members', requireAdmin, async (req, res) => {
    const { user } = parse(memberBody, req.body);
    const group = await ctx.groups.addMember({
      actor: req.auth!.user.name,
      group: String(req.params.name),
      user,
    });
    res.status(201).json({ group });
  });
  r.delete('/api/v1/groups/:name/members/:user', requireAdmin, async (req, res) => {
    const group = await ctx.groups.removeMember({
      actor: req.auth!.user.name,
      group: String(req.params.name),
      user: String(req.params.user),
    });
    res.json({ group });
  });
}

/** A query answered on the page, or the error that names the field. */
async function answer<T>(run: () => Promise<T> | T): Promise<{ result?: T; error?: string }> {
  try {
    return { result: await run() };
  } catch (err) {
    if (err instanceof AppError && err.status < 500) return { error: err.message };
    throw err;
  }
}

function accessPages(r: Router, ctx: AppContext): void {
  const page = async (req: Request, res: Response, status = 200, form?: FormError, diff?: unknown) => {
    const user = typeof req.query.user === 'string' ? req.query.user.slice(0, 64) : '';
    const destination = typeof req.query.destination === 'string' ? req.query.destination.slice(0, 300) : '';
    const reach = user ? await answer(() => ctx.accessQueries.reachOf(user)) : undefined;
    const check =
      user && destination
        ? await answer(() => ctx.accessQueries.check(user, destination, ctx.clusterObjects))
        : undefined;
    const who =
      destination && !user
        ? await answer(() => ctx.accessQueries.whoCanReach(destination, ctx.clusterObjects))
        : undefined;
    res.status(status).render('admin/access', {
      title: 'Access',
      nav: 'access',
      mode: ctx.access.mode(),
      version: ctx.access.version(),
      ruleCount: (await ctx.access.rules()).length,
      yaml: form?.values.rules ?? ctx.access.exportYaml(),
      cluster: Boolean(ctx.clusterObjects),
      form,
      diff,
      query: { user, destination },
      reach,
      check,
      who,
      notice: notice(req),
    });
  };
  r.get('/admin/access', requireAdmin, (req, res) => page(req, res));
  r.post('/admin/access', requireAdmin, async (req, res) => {
    const raw = req.body as Record<string, unknown>;
    const text = typeof raw.rules === 'string' ? raw.rules : '';
    const isDry = dryRun(raw.dryRun);
    try {
      const input = ctx.access.parseYaml(text);
      const diff = await ctx.access.apply({ actor: req.auth!.user.name, input, dryRun: isDry });
      if (isDry) return page(req, res, 200, { message: '', values: { rules: text } }, diff);
    } catch (err) {
      const form = formError(err, raw);
      if (!form) throw err;
      return page(req, res, (err as AppError).status, form);
    }
    res.redirect(303, '/admin/access?done=access-applied');
  });

  r.get('/access', requireUser, async (req, res) => {
    res.render('my-access', {
      title: 'My access',
      nav: 'access-mine',
      mode: (await ctx.access.mode()).mode,
      items: ctx.accessQueries.reachOf(req.auth!.user.name),
    });
  });
}

/** Group membership from the admin Users page (create, delete, add and remove members). */
function groupPages(r: Router, ctx: AppContext): void {
  const back = (res: Response, done: string) => res.redirect(303, `/admin/users?done=${done}#groups`);
  r.post('/admin/groups', requireAdmin, async (req, res) => {
    const body = parse(groupBody, req.body);
    await ctx.groups.create({ actor: req.auth!.user.name, name: body.name, description: body.description });
    back(res, 'group-created');
  });
  r.post('/admin/groups/members', requireAdmin, async (req, res) => {
    const body = parse(memberBody.extend({ group: nameField }), req.body);
    await ctx.groups.addMember({ actor: req.auth!.user.name, group: body.group, user: body.user });
    back(res, 'group-updated');
  });
  r.post('/admin/groups/:name/delete', requireAdmin, async (req, res) => {
    await ctx.groups.remove({ actor: req.auth!.user.name, name: String(req.params.name) });
    back(res, 'group-deleted');
  });
  r.post('/admin/groups/:name/members', requireAdmin, async (req, res) => {
    const { user } = parse(memberBody, req.body);
    await ctx.groups.addMember({ actor: req.auth!.user.name, group: String(req.params.name), user });
    back(res, 'group-updated');
  });
  r.post('/admin/groups/:name/members/:user/remove', requireAdmin, async (req, res) => {
    await ctx.groups.removeMember({
      actor: req.auth!.user.name,
      group: String(req.params.name),
      user: String(req.params.user),
    });
    back(res, 'group-updated');
  });
}
