// Replies that can grow with a task (or a user's tasks) come a page at a time: a reply must stay
// under NATS's max_payload. showAll asks for the pages of `show` in turn and joins them into one
// TaskDetail; pages() walks the pages of `list` and `download`, which say where the next starts.
import { MAX_POINTS_LIMIT, type TaskDetail } from "../protocol/api.ts";

/** Fetches one page: the points from index `from`, at most `limit` of them. */
export type ShowPage = (from: number, limit: number) => Promise<TaskDetail>;

/** A page count far beyond any task, so a steering that never ends its pages is caught. */
const MAX_PAGES = 100_000;

export async function showAll(page: ShowPage, withPoints = true): Promise<TaskDetail> {
  const first = await page(0, withPoints ? MAX_POINTS_LIMIT : 0);
  if (!withPoints) return first;
  const points = [...first.points];
  let next = first.pointsNext;
  let last = first;
  for (let n = 0; next !== null; n++) {
    if (n >= MAX_PAGES || next <= last.pointsFrom)
      throw new Error(`steering's pages of the points do not move on (next page at ${next})`);
    last = await page(next, MAX_POINTS_LIMIT);
    points.push(...last.points);
    next = last.pointsNext;
  }
  // The summary of the last page is the newest; the points are as each page saw them.
  return { ...last, points, pointsFrom: 0, pointsNext: null };
}

/**
 * Each page in turn, from 0 until one says `next: null`. A generator, so a caller can act on a
 * page (download its files) before asking for the next: presigned URLs expire.
 */
export async function* pages<P extends { next: number | null }>(
  page: (from: number) => Promise<P>,
): AsyncGenerator<P> {
  let from = 0;
  for (let n = 0; ; n++) {
    const p = await page(from);
    yield p;
    if (p.next === null) return;
    if (n >= MAX_PAGES || p.next <= from)
      throw new Error(`steering's pages do not move on (next page at ${p.next})`);
    from = p.next;
  }
}
