import type { ChartDay } from '../services/usage.js';

const W = 720;
const H = 160;
const PAD_L = 64;
const PAD_B = 22;

function humanBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** One bar panel: a bar per day, the maximum on the axis, a <title> per bar for exact values. */
function panel(
  days: readonly ChartDay[],
  value: (d: ChartDay) => number,
  label: (n: number) => string,
  id: string,
  colour: string,
): string {
  const max = Math.max(1, ...days.map(value));
  const slot = (W - PAD_L) / Math.max(1, days.length);
  const plotH = H - PAD_B - 10;
  const bars = days
    .map((d, i) => {
      const v = value(d);
      const h = Math.round((v / max) * plotH);
      const x = (PAD_L + i * slot + slot * 0.15).toFixed(1);
      const y = H - PAD_B - h;
      return `<rect x="${x}" y="${y}" width="${(slot * 0.7).toFixed(1)}" height="${h}" fill="${colour}" data-day="${d.day}" data-value="${v}"><title>${d.day}: ${label(v)}</title></rect>`;
    })
    .join('');
  const first = days[0]?.day ?? '';
  const last = days[days.length - 1]?.day ?? '';
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" role="img" id="${id}" aria-labelledby="${id}-t">`,
    `<title id="${id}-t">${id === 'chart-bytes' ? 'Bytes per day' : 'Sessions per day'}, ${first} to ${last}</title>`,
    `<line x1="${PAD_L}" y1="${H - PAD_B}" x2="${W}" y2="${H - PAD_B}" stroke="#888"/>`,
    `<line x1="${PAD_L}" y1="10" x2="${PAD_L}" y2="${H - PAD_B}" stroke="#888"/>`,
    `<text x="${PAD_L - 6}" y="18" text-anchor="end" font-size="11" fill="currentColor">${label(max)}</text>`,
    `<text x="${PAD_L - 6}" y="${H - PAD_B}" text-anchor="end" font-size="11" fill="currentColor">0</text>`,
    `<text x="${PAD_L}" y="${H - 6}" font-size="11" fill="currentColor">${first}</text>`,
    `<text x="${W}" y="${H - 6}" text-anchor="end" font-size="11" fill="currentColor">${last}</text>`,
    bars,
    '</svg>',
  ].join('');
}

/**
 * The admin usage chart as inline SVG made on the server (no script, no CDN, nothing the CSP must
 * allow): bytes per day and sessions per day. Only numbers and YYYY-MM-DD strings go into it.
 */
export function usageChartSvg(days: readonly ChartDay[]): { bytes: string; sessions: string } {
  return {
    bytes: panel(days, (d) => d.bytes, humanBytes, 'chart-bytes', '#2f6fdf'),
    sessions: panel(
      days,
      (d) => d.sessions,
      (n) => String(n),
      'chart-sessions',
      '#2a9d5c',
    ),
  };
}
