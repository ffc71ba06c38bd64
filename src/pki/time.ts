/** Time rules shared by certificates and CRLs. */

/** Certificates and CRLs start 5 minutes in the past so that a peer whose clock is a little behind accepts them. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
export const DAY_MS = 86_400_000;

/** X.509 times have whole seconds: round down so a returned Date equals what the encoding says. */
export function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}
