function toDate(v: unknown): Date | undefined {
  if (v instanceof Date) return v;
  if (typeof v === 'string' || typeof v === 'number') {
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  return undefined;
}

/** "keyCompromise" -> "Key compromise". */
export function humanReason(v: string): string {
  const s = v.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Template helpers. Everything they return is escaped by handlebars like any other value. */
export function helpers(now: () => Date): Record<string, (...args: unknown[]) => unknown> {
  return {
    /** "2026-11-27 12:00 UTC"; a dash for no date. */
    date(v: unknown): string {
      const d = toDate(v);
      return d ? d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : '—';
    },
    /** The day only, for tables. */
    day(v: unknown): string {
      const d = toDate(v);
      return d ? d.toISOString().slice(0, 10) : '—';
    },
    /** ISO timestamp for <time datetime>. */
    iso(v: unknown): string {
      return toDate(v)?.toISOString() ?? '';
    },
    /** "3 minutes ago", "in 29 days", or "never". */
    ago(v: unknown): string {
      const d = toDate(v);
      if (!d) return 'never';
      const diff = d.getTime() - now().getTime();
      const abs = Math.abs(diff);
      const units: [number, string][] = [
        [86_400_000, 'day'],
        [3_600_000, 'hour'],
        [60_000, 'minute'],
      ];
      for (const [ms, name] of units) {
        if (abs >= ms) {
          const n = Math.floor(abs / ms);
          const text = `${n} ${name}${n === 1 ? '' : 's'}`;
          return diff < 0 ? `${text} ago` : `in ${text}`;
        }
      }
      return diff < 0 ? 'just now' : 'in a moment';
    },
    bytes(v: unknown): string {
      let n = typeof v === 'number' ? v : Number(v);
      if (!Number.isFinite(n)) return '—';
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) {
        n /= 1024;
        i++;
      }
      return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
    },
    eq(a: unknown, b: unknown): boolean {
      return a === b;
    },
    json(v: unknown): string {
      return JSON.stringify(v);
    },
    /** Audit details as "key value" pairs for reading, not JSON (handlebars escapes each part). */
    pairs(v: unknown): { key: string; value: string }[] {
      if (!v || typeof v !== 'object') return [];
      return Object.entries(v as Record<string, unknown>).map(([key, value]) => ({
        key,
        value: typeof value === 'string' ? value : JSON.stringify(value),
      }));
    },
    /** Yields the block when the date is within `days` from now (and not past). */
    expiringSoon(v: unknown, days: unknown): boolean {
      const d = toDate(v);
      if (!d) return false;
      const left = d.getTime() - now().getTime();
      return left > 0 && left <= Number(days) * 86_400_000;
    },
    /** `{{#select value}}...options...{{/select}}` is avoided; this marks one option. */
    selected(a: unknown, b: unknown): string {
      return a === b ? 'selected' : '';
    },
    checked(a: unknown): string {
      return a ? 'checked' : '';
    },
    /** Joins its arguments into one string (handlebars passes its options object last). */
    concat(...args: unknown[]): string {
      return args.slice(0, -1).map(String).join('');
    },
    inc(n: unknown): number {
      return Number(n) + 1;
    },
    or(...args: unknown[]): unknown {
      const values = args.slice(0, -1) as unknown[]; // last argument is handlebars' options
      return values.find(Boolean) ?? values[values.length - 1];
    },
    not(v: unknown): boolean {
      return !v;
    },
    /** Title-cases a camelCase reason for display ("keyCompromise" -> "Key compromise"). */
    human(v: unknown): string {
      return typeof v === 'string' && v !== '' ? humanReason(v) : '';
    },
  };
}
