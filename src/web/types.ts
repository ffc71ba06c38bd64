import type { User } from '../store/types.js';
import type { WebSession } from './session.js';

/** Who is making the request, and how they proved it. */
export interface Auth {
  user: User;
  via: 'session' | 'token';
  /** Present for cookie sign-ins; carries the CSRF token. */
  session?: WebSession;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by the request-id middleware; shown with every 500 so a log line can be found. */
      requestId: string;
      auth?: Auth;
    }
  }
}

export {};
