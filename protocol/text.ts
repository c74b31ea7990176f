// How a value or a misspelt name is told in an error message.

/** JSON text of a value for messages; never throws. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number") return String(v); // JSON would print NaN and Infinity as null
  try {
    return JSON.stringify(v) ?? `a ${typeof v}`;
  } catch {
    return `a ${typeof v} that is not JSON`;
  }
}

/** Levenshtein-closest candidate, or undefined when none is within half the word's length. */
export function closest(word: string, candidates: readonly string[], always = false): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return always || bestD <= Math.max(2, Math.floor(word.length / 2)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
