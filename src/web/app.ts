import express from 'express';
import cookieParser from 'cookie-parser';
import { create as createHandlebars } from 'express-handlebars';
import { existsSync, readFileSync } from 'node:fs';
import { BadRequest } from '../lib/errors.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppContext } from '../services/context.js';
import { TokenService } from '../services/tokens.js';
import { WebActions } from './actions.js';
import { AdminData } from './admin-data.js';
import { authenticate } from './auth.js';
import type { ClusterPort } from './cluster-port.js';
import { DeployTracker } from './deploy-tracker.js';
import { errorHandler, notFound, requestId } from './error-handler.js';
import { helpers } from './helpers.js';
import { DEFAULT_THROTTLE, LoginThrottle, type ThrottleLimits } from './login-throttle.js';
import { SharedLoginGate } from './shared-login-gate.js';
import { createMetrics } from './metrics.js';
import { securityHeaders } from './security.js';
import { SessionManager } from './session.js';
import type { SessionsProvider } from './sessions-provider.js';
import { apiRouter } from './routes/api.js';
import { accessRouter } from './routes/access.js';
import { backupRouter } from './routes/backup.js';
import { adminPages } from './routes/pages-admin.js';
import { userPages } from './routes/pages-user.js';
import { oidcRoutes } from './routes/oidc.js';
import { openOidc, type OidcParts } from '../services/oidc.js';
import { renewalRouter } from './routes/renewal.js';
import { caPages } from './routes/pages-ca.js';
import { caExpiryWarning } from '../services/ca-status.js';
import { publicRouter } from './routes/public.js';
import { openApiRouter } from './routes/openapi.js';
import { tokenPages, tokensApi } from './routes/tokens.js';
import { ImportLinkService } from '../services/import-links.js';
import { importLinkRoutes, importProfileRoute } from './routes/import.js';
import { restProfileRouter } from './routes/rest-profile.js';
import { UsageService } from '../services/usage.js';
import { ConnectionCheckService } from '../services/connection-check.js';
import { webOrigin } from '../lib/connection-probe.js';
import { connectionProbeRoute } from './routes/connection-check.js';
import { usageRoutes } from './routes/usage.js';

export interface AppDeps {
  ctx: AppContext;
  /** Live sessions from the OpenVPN management interface; absent: pages say "server not connected". */
  sessions?: SessionsProvider;
  /** The cluster module's ClusterService; absent: the cluster page says so. */
  cluster?: ClusterPort;
  now?: () => Date;
  /** Sign-in throttle limits (tests lower them). */
  throttle?: Partial<ThrottleLimits>;
  /** Single sign-on parts; default: built from `auth.oidc` (none when it is not configured). */
  oidc?: OidcParts;
}

/** Finds the repository root (templates/ and public/) from dist/src/web or src/web. */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'templates', 'views'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('templates/views not found above ' + fileURLToPath(import.meta.url));
}

/** The metrics bearer token from its file (a secret never sits in the config itself). */
function readMetricsToken(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new BadRequest(`web.metricsTokenFile ${file} cannot be read`, 'web.metricsTokenFile', err);
  }
  if (token.length < 16)
    throw new BadRequest(
      'web.metricsTokenFile must hold a token of at least 16 characters',
      'web.metricsTokenFile',
    );
  return token;
}

/**
 * The whole web app: pages under `/`, JSON under `/api/v1`, public probes, CRL and metrics.
 * Builds nothing outside itself: every dependency arrives in `deps`.
 */
export function createApp(deps: AppDeps): express.Express {
  const { ctx } = deps;
  const now = deps.now ?? (() => new Date());
  const root = findRoot();
  const app = express();

  const hbs = createHandlebars({
    extname: '.hbs',
    defaultLayout: 'main',
    layoutsDir: join(root, 'templates', 'layouts'),
    partialsDir: join(root, 'templates', 'partials'),
    helpers: helpers(now),
  });
  // express-handlebars reports through Express's callback; the Promise it also returns is not needed.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  app.engine('hbs', hbs.engine);
  app.set('view engine', 'hbs');
  app.set('views', join(root, 'templates', 'views'));
  // Templates are read once in production; tests and benchmarks want the same.
  app.enable('view cache');
  app.disable('x-powered-by');
  // Only believe X-Forwarded-* from the configured proxies (never from anyone who sends the header):
  // req.ip is then the nearest address that is not one of them, and req.secure follows their scheme.
  app.set('trust proxy', ctx.config.web.trustProxy ? [...ctx.config.web.trustedProxies] : false);

  const sessions = new SessionManager(
    ctx.store,
    { idleMinutes: ctx.config.web.sessionIdleMinutes, absoluteHours: ctx.config.web.sessionAbsoluteHours },
    now,
  );
  const throttleLimits = { ...DEFAULT_THROTTLE, ...deps.throttle };
  const throttle = new LoginThrottle(throttleLimits, now);
  // several replicas on one PostgreSQL: the same budgets counted in the database as well
  const gate = ctx.sharedLimits
    ? new SharedLoginGate(ctx.sharedLimits, throttleLimits, () => now().getTime())
    : undefined;
  const actions = new WebActions(ctx, sessions, throttle, now, gate);
  const tokens = new TokenService({ store: ctx.store, defaultDays: ctx.config.web.apiTokenDays, now });
  const links = new ImportLinkService({
    store: ctx.store,
    devices: ctx.devices,
    minutes: ctx.config.web.importLinkMinutes,
    now,
  });
  const admin = new AdminData(ctx, deps.sessions, deps.cluster, now);
  const deploys = new DeployTracker(now);
  const metrics = createMetrics(ctx.store, deps.sessions, now, ctx, { cluster: deps.cluster, throttle });
  const usage = new UsageService(ctx.store, now);
  const connectionCheck = new ConnectionCheckService({
    config: ctx.config,
    ...(deps.cluster?.serverPodIps ? { serverPodIps: deps.cluster.serverPodIps.bind(deps.cluster) } : {}),
  });
  const routeDeps = { actions, admin, deploys, now, usage, connectionCheck };

  app.use(requestId);
  app.use(metrics.middleware);
  app.use(securityHeaders());
  app.use(
    '/static',
    express.static(join(root, 'public'), { index: false, maxAge: '1h', fallthrough: false }),
  );
  app.use(connectionProbeRoute(webOrigin(ctx.config.web.publicUrl)));
  app.use(publicRouter(ctx, metrics.registry, readMetricsToken(ctx.config.web.metricsTokenFile)));
  app.use(openApiRouter());
  // The separate metrics listener (startServer, web.metricsPort) serves the same registry.
  app.locals.metricsRegistry = metrics.registry;
  // Everything below (pages, API, their errors) is per user or carries a CSRF token or a secret:
  // never kept by a browser or a shared cache. Static files and the public endpoints above keep theirs.
  app.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  app.use(cookieParser());
  app.use(express.urlencoded({ extended: false, limit: '64kb' }));
  app.use(express.json({ limit: '64kb' }));
  app.use((_req, res, next) => {
    res.locals.appName = 'podgate';
    next();
  });
  // OpenVPN Connect's two ways in carry their own credential (a one-use token in the URL, HTTP Basic),
  // so they sit before the session/Bearer authentication.
  app.use(importProfileRoute(links));
  app.use(restProfileRouter({ ctx, actions, tokens, publicUrl: ctx.config.web.publicUrl }));
  app.use(authenticate(ctx.store, sessions, tokens));
  // A CA within a year of expiry needs a rotation planned: every page an admin sees says so.
  app.use((_req, res, next) => {
    if ((res.locals.user as { isAdmin?: boolean } | undefined)?.isAdmin)
      res.locals.caBanner = caExpiryWarning(ctx);
    next();
  });
  app.use('/api/v1/tokens', tokensApi(tokens, now));
  app.use('/tokens', tokenPages(tokens, now));
  app.use(backupRouter(ctx, now));
  app.use(renewalRouter(routeDeps, ctx));
  app.use(importLinkRoutes(links, ctx.config.web.publicUrl));
  app.use(usageRoutes(usage, now));
  app.use(accessRouter(ctx));
  app.use('/api/v1', apiRouter(routeDeps));
  app.use(oidcRoutes({ ctx, sessions, oidc: deps.oidc ?? openOidc(ctx), now }));
  app.use(userPages(routeDeps, ctx.config));
  app.use('/admin', caPages(ctx));
  app.use('/admin', adminPages(routeDeps));
  app.use(notFound);
  app.use(errorHandler);
  return app;
}
