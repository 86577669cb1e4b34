import { canceled } from "../base/mod.ts";

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
}

/** A counting semaphore: at most `max` holders at once, waiters served in order. */
export class Limiter {
  readonly max: number;
  #active = 0;
  #queue: Waiter[] = [];

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max));
  }

  get active(): number {
    return this.#active;
  }

  /** Takes a slot if one is free now. */
  tryAcquire(): boolean {
    if (this.#active < this.max && this.#queue.length === 0) {
      this.#active++;
      return true;
    }
    return false;
  }

  /** Waits for a slot. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(canceled("Canceled"));
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.#queue.indexOf(w);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(canceled("Canceled"));
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#queue.push(w);
    });
  }

  release(): void {
    const next = this.#queue.shift();
    if (next) {
      if (next.onAbort) next.signal?.removeEventListener("abort", next.onAbort);
      next.resolve();
    } else {
      this.#active--;
    }
  }
}
