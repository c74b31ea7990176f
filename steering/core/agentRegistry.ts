// What steering knows about agents: registered slots and liveness from heartbeats, and per-attempt
// lease renewals. Soft state: after a restart every lease starts fresh, so agents get a full lease
// period to renew. Times are passed in (no clock reads).
export interface AgentRec {
  site: string;
  agent: string;
  slots: number;
  freeSlots: number;
  gpus: string[];
  runtime: "docker" | "process";
  lastSeen: number;
  draining: boolean;
}

export class AgentRegistry {
  private readonly agents = new Map<string, AgentRec>();
  private readonly leases = new Map<string, number>();

  constructor(private readonly leaseMs: number) {}

  private static key(site: string, agent: string): string {
    return `${site}/${agent}`;
  }

  register(rec: Omit<AgentRec, "lastSeen" | "freeSlots" | "draining">, now: number): void {
    this.agents.set(AgentRegistry.key(rec.site, rec.agent), {
      ...rec,
      freeSlots: rec.slots,
      lastSeen: now,
      draining: false,
    });
  }

  heartbeat(
    site: string,
    agent: string,
    freeSlots: number,
    draining: boolean,
    now: number,
  ): AgentRec | undefined {
    const a = this.agents.get(AgentRegistry.key(site, agent));
    if (!a) return undefined;
    Object.assign(a, { freeSlots, draining, lastSeen: now });
    return a;
  }

  remove(site: string, agent: string): void {
    this.agents.delete(AgentRegistry.key(site, agent));
  }

  get(site: string, agent: string): AgentRec | undefined {
    return this.agents.get(AgentRegistry.key(site, agent));
  }

  renew(jobId: string, attempt: number, now: number): void {
    this.leases.set(`${jobId}#${attempt}`, now);
  }

  /** When the attempt's lease was last renewed (claim or heartbeat); `fallback` if never. */
  renewedAt(jobId: string, attempt: number, fallback: number): number {
    return this.leases.get(`${jobId}#${attempt}`) ?? fallback;
  }

  forget(jobId: string, attempt: number): void {
    this.leases.delete(`${jobId}#${attempt}`);
  }

  /** Total slots of the live, non-draining agents of each site. */
  capacityBySite(now: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const a of this.agents.values()) {
      if (a.draining || now - a.lastSeen > this.leaseMs) continue;
      out.set(a.site, (out.get(a.site) ?? 0) + a.slots);
    }
    return out;
  }

  list(): AgentRec[] {
    return [...this.agents.values()];
  }
}

/**
 * The allowed site with the most free capacity (slots minus outstanding attempts), or null. A site
 * must be in the task's list (when it has one) and accept the task's user (`accepts`). Sites in
 * `avoid` (where the job already failed) are taken only when no other such site has room.
 */
export function pickSite(
  capacity: ReadonlyMap<string, number>,
  outstanding: ReadonlyMap<string, number>,
  allowed: readonly string[] | undefined,
  accepts: (site: string) => boolean,
  avoid: ReadonlySet<string> = new Set(),
): string | null {
  if (avoid.size > 0) {
    const other = pickSite(
      new Map([...capacity].filter(([site]) => !avoid.has(site))),
      outstanding,
      allowed,
      accepts,
    );
    if (other !== null) return other;
  }
  let best: string | null = null;
  let bestFree = 0;
  for (const [site, slots] of capacity) {
    if (allowed && allowed.length > 0 && !allowed.includes(site)) continue;
    if (!accepts(site)) continue;
    const free = slots - (outstanding.get(site) ?? 0);
    if (free > bestFree || (free === bestFree && free > 0 && best !== null && site < best)) {
      best = site;
      bestFree = free;
    }
  }
  return bestFree > 0 ? best : null;
}
