// PASHA (spec §3.6): promotion ASHA whose maximum resource grows only while the ranking of the
// trials at the current top rung disagrees with their ranking one rung below (soft ranking,
// ε estimated from "noisy" pairs of learning curves).
//
// Deliberate differences from Syne Tune's PASHARungSystem (documented in docs/schedulers.md):
// - Rungs are counted on the ladder L = rung_levels + [max_t], and the first top rung is L[1]. For
//   ≥ 3 rung levels this is exactly the reference (current_rung_idx 2 → the second level). With 2
//   levels the reference picks the rungs the wrong way round, with 1 it crashes; here 2 levels
//   compare L[1] with L[0], and 1 level (L[1] = max_t) is plain promotion ASHA.
// - Skipped epochs do not crash: a pair of trials is compared only at the epochs both reported.
// - ε is updated incrementally: a new result at epoch e is paired with the latest `noise_window`
//   results at e (0 = all, as the reference), so a report costs O(window · e), not O(n² · e).
// - Once the top reaches max_t nothing can change any more, so ε and the ranking are not tracked.
import { numpyQuantile } from "../../protocol/schedulerFormulas.ts";
import { OrderStatTree } from "./ostree.ts";
import { AshaScheduler, type AshaOptions } from "./asha.ts";
import type { Rung } from "./rung.ts";

export interface PashaOptions extends Omit<AshaOptions, "variant" | "rule" | "brackets"> {
  noiseWindow: number;
  epsilon?: number | undefined;
}

/**
 * Syne Tune's soft-ranking test: is the ranking at the top rung the same as at the previous rung,
 * up to ε? Both lists hold raw values of the same trials (prev restricted to trials in top).
 */
export function pashaRankingKept(
  top: readonly { trial: string; value: number }[],
  prev: readonly { trial: string; value: number }[],
  epsilon: number,
  mode: "min" | "max",
): boolean {
  const sign = mode === "min" ? 1 : -1;
  const byScore = (a: { value: number }, b: { value: number }) => sign * a.value - sign * b.value;
  const sortedTop = [...top].sort(byScore);
  const sortedPrev = [...prev].sort(byScore);
  const eps = sortedPrev.length >= 2 ? epsilon : 0;
  const position = new Map(sortedPrev.map((p, i) => [p.trial, i]));
  for (let i = 0; i < sortedTop.length && i < sortedPrev.length; i++) {
    const pos = position.get((sortedTop[i] as { trial: string }).trial);
    if (pos === undefined) return false;
    const vi = sign * (sortedPrev[i] as { value: number }).value;
    const vp = sign * (sortedPrev[pos] as { value: number }).value;
    // the group of item i is the run of neighbours within ε of it, in score units (smaller is better)
    if (pos > i && !(vp <= vi + eps)) return false;
    if (pos < i && !(vp >= vi - eps)) return false;
  }
  return true;
}

export class PashaScheduler extends AshaScheduler {
  private readonly ladder: number[];
  private topIndex: number;
  private readonly noiseWindow: number;
  private readonly fixedEpsilon: number | undefined;
  private epsilon = 0;
  private readonly distances = new OrderStatTree();
  private distanceTie = 0;
  private readonly perEpoch = new Map<number, Map<number, number>>();
  private readonly epochTrials = new Map<number, number[]>();

  constructor(opts: PashaOptions) {
    super({ ...opts, variant: "promotion", rule: "syne-tune", brackets: 1, type: "pasha" });
    this.ladder = [...this.allRungs.map((r) => r.level), this.maxT];
    this.topIndex = Math.min(1, this.ladder.length - 1);
    this.noiseWindow = opts.noiseWindow;
    this.fixedEpsilon = opts.epsilon;
    if (opts.epsilon !== undefined) this.epsilon = opts.epsilon;
  }

  /** The current maximum resource: trials collect at this level until the ranking changes. */
  currentMaxT(): number {
    return this.ladder[this.topIndex] ?? this.maxT;
  }

  currentEpsilon(): number {
    return this.epsilon;
  }

  protected override effectiveMaxT(): number {
    return this.currentMaxT();
  }

  protected override afterReport(trial: number, resource: number, raw: number): void {
    if (this.topIndex >= this.ladder.length - 1) return;
    const curve = this.perEpoch.get(trial) ?? new Map<number, number>();
    this.perEpoch.set(trial, curve);
    const fresh = !curve.has(resource);
    curve.set(resource, raw);
    const bottom = this.ladder[this.topIndex - 1] ?? 0;
    const top = this.currentMaxT();
    let epsilonChanged = false;
    if (fresh) {
      const peers = this.epochTrials.get(resource) ?? [];
      this.epochTrials.set(resource, peers);
      if (this.fixedEpsilon === undefined && resource > bottom && resource <= top) {
        epsilonChanged = this.addNoisyPairs(trial, resource, peers, peers.length);
      }
      peers.push(trial);
    }
    if (epsilonChanged || resource === top || resource === bottom) this.checkRanking();
  }

  private checkRanking(): void {
    const topRung = this.rungAtLevel(this.currentMaxT());
    const prevRung = this.rungAtLevel(this.ladder[this.topIndex - 1] ?? -1);
    if (!topRung || !prevRung || topRung.tree.size === 0 || prevRung.tree.size === 0) return;
    const top = this.entriesOf(topRung);
    const inTop = new Set(top.map((e) => e.trial));
    const prev = this.entriesOf(prevRung).filter((e) => inTop.has(e.trial));
    if (pashaRankingKept(top, prev, this.epsilon, this.sign === 1 ? "min" : "max")) return;
    this.topIndex++;
    if (this.fixedEpsilon === undefined && this.topIndex < this.ladder.length - 1) this.rebuildDistances();
  }

  private entriesOf(rung: Rung): { trial: string; value: number }[] {
    return rung.tree
      .entries()
      .map((e) => ({ trial: String(rung.trialOfTie.get(e.tie)), value: this.sign * e.value }));
  }

  // The window (bottom, top] moved: recompute the noisy pairs over it, as the reference does.
  private rebuildDistances(): void {
    this.distances.clear();
    const bottom = this.ladder[this.topIndex - 1] ?? 0;
    const top = this.currentMaxT();
    for (const [epoch, trials] of this.epochTrials) {
      if (epoch <= bottom || epoch > top) continue;
      trials.forEach((t, i) => this.addNoisyPairs(t, epoch, trials, i));
    }
  }

  /** Pairs `trial` with up to noise_window trials of peers[0..end) at `epoch`; true when ε changed. */
  private addNoisyPairs(trial: number, epoch: number, peers: readonly number[], end: number): boolean {
    const start = this.noiseWindow === 0 ? 0 : Math.max(0, end - this.noiseWindow);
    const mine = this.perEpoch.get(trial);
    const v1 = mine?.get(epoch);
    if (!mine || v1 === undefined) return false;
    let added = false;
    for (let i = start; i < end; i++) {
      const other = this.perEpoch.get(peers[i] ?? -1);
      const v2 = other?.get(epoch);
      if (!other || v2 === undefined || !isNoisyPair(mine, other, epoch)) continue;
      this.distances.insert(Math.abs(v1 - v2), this.distanceTie++);
      added = true;
    }
    if (!added) return false;
    const before = this.epsilon;
    const n = this.distances.size;
    this.epsilon = numpyQuantile(n, (i) => this.distances.valueAt(i), 0.9);
    return this.epsilon !== before;
  }
}

/**
 * A pair is noisy at epoch e when, scanning the epochs below e that both trials reported, their
 * order is first the opposite of the order at e and later (at an earlier epoch) the same again.
 */
export function isNoisyPair(
  a: ReadonlyMap<number, number>,
  b: ReadonlyMap<number, number>,
  epoch: number,
): boolean {
  const cond = (a.get(epoch) ?? NaN) > (b.get(epoch) ?? NaN);
  const common = [...a.keys()].filter((e) => e < epoch && b.has(e)).sort((x, y) => y - x);
  let seenOpposite = false;
  for (const e of common) {
    const va = a.get(e) ?? NaN;
    const vb = b.get(e) ?? NaN;
    if (va > vb !== cond) seenOpposite = true;
    else if (seenOpposite) return true;
  }
  return false;
}
