/**
 * Runs `tick` every `intervalMs`, never two at once (a tick still running when the next is due is
 * skipped), and never holds the process open (the timer is unref'd). Errors go to `onError`, never
 * thrown. `stop()` cancels the timer and resolves once a tick that was running has finished: a
 * caller that closes what the tick uses (the store) awaits it first, so no tick runs into a closed
 * store or leaves its audit row half-written.
 */
export function pollEvery(
  intervalMs: number,
  tick: () => Promise<unknown>,
  onError: (err: unknown) => void,
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = tick()
      .then(() => undefined, onError)
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref?.();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
