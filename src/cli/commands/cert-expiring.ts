import { BadRequest } from '../../lib/errors.js';

/** `--expiring 30d` (or `30`): a whole number of days from 0 to 36500. */
export function parseExpiringWindow(value: string): number {
  const m = /^(\d{1,5})d?$/.exec(value.trim());
  const days = m ? Number(m[1]) : NaN;
  if (!Number.isInteger(days) || days > 36_500)
    throw new BadRequest(`--expiring must be a number of days such as 30d (got "${value}")`, 'expiring');
  return days;
}
