// The agent's slots: which are free, and a wait for the first one to free up.

export class SlotPool {
  private readonly free: number[];
  private waiters: Array<() => void> = [];

  constructor(count: number) {
    this.free = Array.from({ length: count }, (_, i) => i);
  }

  get freeCount(): number {
    return this.free.length;
  }

  /** Every free slot, once there is at least one; empty when `running()` turns false (see wake). */
  async takeAll(running: () => boolean): Promise<number[]> {
    while (running()) {
      if (this.free.length > 0) return this.free.splice(0);
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return [];
  }

  release(slot: number): void {
    this.free.push(slot);
    this.free.sort((a, b) => a - b);
    this.wake();
  }

  /** Ends the current waits: each looks at `running()` again. */
  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
