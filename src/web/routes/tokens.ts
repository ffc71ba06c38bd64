import { Router, type Request, type Response } from 'express';
import { AppError } from '../../lib/errors.js';
import type { TokenService } from '../../services/tokens.js';
import type { ApiToken } from '../../store/types.js';
import { csrfProtect, requireUser } from '../auth.js';
import { listPage, pageQuery } from '../pagination.js';
import { createTokenBody, parse, tokenListQuery } from '../validation.js';
import { formError, notice, type FormError } from './pages-user.js';
import { documentedRouter } from '../api-router.js';
import '../types.js';

/** A token as lists show it: never the secret (which is not stored) nor its hash. */
export function tokenView(t: ApiToken, now: Date): Record<string, unknown> {
  return {
    id: t.id,
    user: t.userName,
    name: t.name,
    createdAt: t.createdAt,
    lastUsedAt: t.lastUsedAt,
    expiresAt: t.expiresAt,
    expired: t.expiresAt !== null && t.expiresAt.getTime() <= now.getTime(),
  };
}

function wantsAll(req: Request): boolean {
  const { all } = parse(tokenListQuery, req.query);
  return all === '1' || all === 'true';
}

/**
 * `GET|POST /api/v1/tokens`, `DELETE /api/v1/tokens/:id`: a user's own API tokens (admins: `?all=1`
 * lists everyone's, and they may delete anyone's). The secret is in the POST answer only.
 */
export function tokensApi(tokens: TokenService, now: () => Date): Router {
  const r = documentedRouter('/api/v1/tokens');
  r.use(requireUser, csrfProtect);
  r.get('/', async (req, res) => {
    const at = now();
    const q = parse(pageQuery, req.query);
    res.json(
      listPage(
        (await tokens.list(req.auth!.user, wantsAll(req))).map((t) => tokenView(t, at)),
        q,
      ),
    );
  });
  r.post('/', async (req, res) => {
    const body = parse(createTokenBody, req.body);
    const user = req.auth!.user;
    const { token, secret } = await tokens.create({
      actor: user.name,
      owner: user,
      name: body.name,
      days: body.days,
    });
    res.status(201).json({ token: tokenView(token, now()), secret });
  });
  r.delete('/:id', async (req, res) => {
    await tokens.delete(req.auth!.user, Number(req.params.id));
    res.status(204).end();
  });
  return r;
}

/** `/tokens`: the same as a page (list, create with the secret shown once, delete). */
export function tokenPages(tokens: TokenService, now: () => Date): Router {
  const r = Router();
  r.use(requireUser, csrfProtect);
  const page = async (
    req: Request,
    res: Response,
    extra: {
      status?: number;
      form?: FormError;
      created?: { name: string; secret: string; expiresAt: Date };
    } = {},
  ): Promise<void> => {
    const user = req.auth!.user;
    const all = user.role === 'admin';
    const at = now();
    res.status(extra.status ?? 200).render('tokens', {
      title: 'API tokens',
      nav: 'tokens',
      tokens: (await tokens.list(user, all)).map((t) => tokenView(t, at)),
      showOwner: all,
      notice: notice(req),
      form: extra.form,
      created: extra.created,
    });
  };
  r.get('/', (req, res) => page(req, res));
  r.post('/', async (req, res) => {
    const raw = req.body as Record<string, unknown>;
    const user = req.auth!.user;
    try {
      const body = parse(createTokenBody, raw);
      const { token, secret } = await tokens.create({
        actor: user.name,
        owner: user,
        name: body.name,
        days: body.days,
      });
      // Shown in this answer only: never redirect with a secret in the URL.
      page(req, res, { status: 201, created: { name: token.name, secret, expiresAt: token.expiresAt! } });
    } catch (err) {
      const form = formError(err, raw);
      if (!form) throw err;
      page(req, res, { status: (err as AppError).status, form });
    }
  });
  r.post('/:id/delete', async (req, res) => {
    await tokens.delete(req.auth!.user, Number(req.params.id));
    res.redirect(303, '/tokens?done=token-deleted');
  });
  return r;
}
