/**
 * A first-come, first-served lock for async code in one process. Uncontended, `tryAcquire` takes it
 * synchronously (no Promise, no tick); when held, `acquire` waits in line and the releaser hands the
 * lock straight to the next waiter, so nothing can slip in between.
 */
export class AsyncMutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  get locked(): boolean {
    return this.held;
  }

  /** Takes the lock if it is free; false when someone holds it. */
  tryAcquire(): boolean {
    if (this.held) return false;
    this.held = true;
    return true;
  }

  /** Resolves once this caller holds the lock (in the order callers asked). */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Gives the lock to the next waiter, or frees it. Only the holder may call this. */
  release(): void {
    if (!this.held) throw new Error('AsyncMutex.release() without holding the lock');
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}
