import { Router, type Request, type Response } from 'express';
import { AppError, BadRequest } from '../../lib/errors.js';
import { backupFileName } from '../../services/backup-schedule.js';
import { checkPassphrase } from '../../services/backup-format.js';
import { createStoreBackup } from '../../services/store-backup.js';
import type { AppContext } from '../../services/context.js';
import { csrfProtect, requireAdmin } from '../auth.js';
import { documentedRouter } from '../api-router.js';
import '../types.js';

/** The passphrase from a form or JSON body: a string of at least 12 characters, typed twice in the form. */
function passphraseFrom(body: unknown, confirm: boolean): string {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.passphrase !== 'string') throw new BadRequest('passphrase is required', 'passphrase');
  const pass = checkPassphrase(b.passphrase, 'passphrase');
  if (confirm && b.passphrase2 !== pass) throw new BadRequest('the two passphrases differ', 'passphrase2');
  return pass;
}

/**
 * Admins download a backup of the store (data dir, or PostgreSQL database), encrypted with a passphrase they choose, from the page
 * `/admin/backup` or with `POST /api/v1/backup {"passphrase": "..."}`. Every download is audited
 * (who, size, SHA-256); the file is never cached or kept on the server.
 */
export function backupRouter(ctx: AppContext, now: () => Date): Router {
  const r = documentedRouter();
  async function download(req: Request, res: Response, pass: string): Promise<void> {
    const at = now();
    // SQLite: the data dir; PostgreSQL: the database's rows (one snapshot) and its CA files
    const made = await createStoreBackup({
      config: ctx.config,
      dataDir: ctx.dataDir,
      passphrase: pass,
      now: at,
      exclude: ctx.config.backup.dir ? [ctx.config.backup.dir] : [],
    });
    await ctx.store.appendAudit({
      actor: req.auth!.user.name,
      action: 'backup.download',
      target: backupFileName(at),
      result: 'ok',
      details: {
        bytes: made.data.length,
        sha256: made.sha256,
        certificates: made.info.certificates,
        via: req.auth!.via,
      },
    });
    res.set({
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      'Content-Type': 'application/octet-stream',
      'Content-Disposition': `attachment; filename="${backupFileName(at)}"`,
      'X-Backup-Sha256': made.sha256,
    });
    res.status(200).send(made.data);
  }

  const page = (res: Response, status = 200, error?: { message: string; field?: string }) =>
    res.status(status).render('admin/backup', {
      title: 'Backup',
      nav: 'backup',
      error,
      scheduled: ctx.config.backup.dir
        ? { dir: ctx.config.backup.dir, keep: ctx.config.backup.keep, hours: ctx.config.backup.intervalHours }
        : undefined,
    });

  r.get('/admin/backup', requireAdmin, (_req, res) => page(res));

  r.post('/admin/backup', requireAdmin, csrfProtect, async (req, res) => {
    let pass: string;
    try {
      pass = passphraseFrom(req.body, true);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return page(res, err.status, { message: err.message, field: err.field });
    }
    await download(req, res, pass);
  });

  r.post('/api/v1/backup', requireAdmin, csrfProtect, async (req, res) => {
    await download(req, res, passphraseFrom(req.body, false));
  });

  return r;
}
