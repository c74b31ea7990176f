// An order-statistics multiset: an AVL tree whose nodes carry subtree sizes, so insert, remove,
// rank (how many entries are smaller) and select (the k-th smallest) all cost O(log n). Every rung
// keeps its metrics in one of these; this is what lets a continue/stop decision avoid a sort.
// Nodes live in typed arrays (index 0 is the empty tree) so 100,000 entries stay a few MB.
// Entries are ordered by (value, tie): `tie` is the arrival number, so equal values keep the
// order in which they arrived, as the references' sorted lists do.

const NIL = 0;

export class OrderStatTree {
  private value = new Float64Array(16);
  private tie = new Float64Array(16);
  private left = new Int32Array(16);
  private right = new Int32Array(16);
  private height = new Int8Array(16);
  private count = new Int32Array(16);
  private root = NIL;
  private nextNode = 1;
  private freeNodes: number[] = [];

  get size(): number {
    return this.count[this.root] ?? 0;
  }

  insert(value: number, tie: number): void {
    if (Number.isNaN(value)) throw new RangeError("OrderStatTree holds no NaN");
    const node = this.allocate(value, tie);
    this.root = this.insertAt(this.root, node);
  }

  clear(): void {
    this.root = NIL;
    this.nextNode = 1;
    this.freeNodes = [];
  }

  /** Removes the entry (value, tie); returns false when it is not there. */
  remove(value: number, tie: number): boolean {
    const before = this.size;
    this.root = this.removeAt(this.root, value, tie);
    return this.size < before;
  }

  /** Number of entries with a value strictly below `v`. */
  countLess(v: number): number {
    let n = this.root;
    let acc = 0;
    while (n !== NIL) {
      if (this.at(this.value, n) < v) {
        acc += this.sizeOf(this.at(this.left, n)) + 1;
        n = this.at(this.right, n);
      } else n = this.at(this.left, n);
    }
    return acc;
  }

  /** Number of entries with a value at most `v`. */
  countLessOrEqual(v: number): number {
    let n = this.root;
    let acc = 0;
    while (n !== NIL) {
      if (this.at(this.value, n) <= v) {
        acc += this.sizeOf(this.at(this.left, n)) + 1;
        n = this.at(this.right, n);
      } else n = this.at(this.left, n);
    }
    return acc;
  }

  /** Number of entries ordered before (value, tie). */
  rankOf(value: number, tie: number): number {
    let n = this.root;
    let acc = 0;
    while (n !== NIL) {
      if (this.compare(this.at(this.value, n), this.at(this.tie, n), value, tie) < 0) {
        acc += this.sizeOf(this.at(this.left, n)) + 1;
        n = this.at(this.right, n);
      } else n = this.at(this.left, n);
    }
    return acc;
  }

  /** The k-th smallest entry (0-based). */
  select(k: number): { value: number; tie: number } {
    const n = this.selectNode(k);
    return { value: this.at(this.value, n), tie: this.at(this.tie, n) };
  }

  /** The value of the k-th smallest entry (0-based). */
  valueAt(k: number): number {
    return this.at(this.value, this.selectNode(k));
  }

  /** All entries in order (for inspection and tests; O(n)). */
  entries(): { value: number; tie: number }[] {
    const out: { value: number; tie: number }[] = [];
    const stack: number[] = [];
    let n = this.root;
    while (n !== NIL || stack.length > 0) {
      while (n !== NIL) {
        stack.push(n);
        n = this.at(this.left, n);
      }
      n = stack.pop() as number;
      out.push({ value: this.at(this.value, n), tie: this.at(this.tie, n) });
      n = this.at(this.right, n);
    }
    return out;
  }

  private selectNode(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k >= this.size) throw new RangeError(`select(${k}) of ${this.size}`);
    let n = this.root;
    let rest = k;
    for (;;) {
      const leftSize = this.sizeOf(this.at(this.left, n));
      if (rest < leftSize) n = this.at(this.left, n);
      else if (rest === leftSize) return n;
      else {
        rest -= leftSize + 1;
        n = this.at(this.right, n);
      }
    }
  }

  private compare(v1: number, t1: number, v2: number, t2: number): number {
    if (v1 !== v2) return v1 < v2 ? -1 : 1;
    return t1 === t2 ? 0 : t1 < t2 ? -1 : 1;
  }

  // Typed-array reads are number | undefined under noUncheckedIndexedAccess; every index used
  // here is a live node or NIL, so the fallback never applies.
  private at(arr: Float64Array | Int32Array | Int8Array, i: number): number {
    return arr[i] ?? 0;
  }

  private sizeOf(n: number): number {
    return this.count[n] ?? 0;
  }

  private allocate(value: number, tie: number): number {
    let node = this.freeNodes.pop();
    if (node === undefined) {
      node = this.nextNode++;
      if (node >= this.value.length) this.grow();
    }
    this.value[node] = value;
    this.tie[node] = tie;
    this.left[node] = NIL;
    this.right[node] = NIL;
    this.height[node] = 1;
    this.count[node] = 1;
    return node;
  }

  private grow(): void {
    const cap = this.value.length * 2;
    const growF = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const growI = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.value = growF(this.value);
    this.tie = growF(this.tie);
    this.left = growI(this.left);
    this.right = growI(this.right);
    this.count = growI(this.count);
    const h = new Int8Array(cap);
    h.set(this.height);
    this.height = h;
  }

  private update(n: number): void {
    const l = this.at(this.left, n);
    const r = this.at(this.right, n);
    this.height[n] = Math.max(this.at(this.height, l), this.at(this.height, r)) + 1;
    this.count[n] = this.sizeOf(l) + this.sizeOf(r) + 1;
  }

  private rotateRight(n: number): number {
    const l = this.at(this.left, n);
    this.left[n] = this.at(this.right, l);
    this.right[l] = n;
    this.update(n);
    this.update(l);
    return l;
  }

  private rotateLeft(n: number): number {
    const r = this.at(this.right, n);
    this.right[n] = this.at(this.left, r);
    this.left[r] = n;
    this.update(n);
    this.update(r);
    return r;
  }

  private balance(n: number): number {
    this.update(n);
    const l = this.at(this.left, n);
    const r = this.at(this.right, n);
    const diff = this.at(this.height, l) - this.at(this.height, r);
    if (diff > 1) {
      const ll = this.at(this.height, this.at(this.left, l));
      const lr = this.at(this.height, this.at(this.right, l));
      if (lr > ll) this.left[n] = this.rotateLeft(l);
      return this.rotateRight(n);
    }
    if (diff < -1) {
      const rl = this.at(this.height, this.at(this.left, r));
      const rr = this.at(this.height, this.at(this.right, r));
      if (rl > rr) this.right[n] = this.rotateRight(r);
      return this.rotateLeft(n);
    }
    return n;
  }

  private insertAt(n: number, node: number): number {
    if (n === NIL) return node;
    const c = this.compare(
      this.at(this.value, node),
      this.at(this.tie, node),
      this.at(this.value, n),
      this.at(this.tie, n),
    );
    if (c < 0) this.left[n] = this.insertAt(this.at(this.left, n), node);
    else this.right[n] = this.insertAt(this.at(this.right, n), node);
    return this.balance(n);
  }

  private removeMin(n: number): { root: number; min: number } {
    const l = this.at(this.left, n);
    if (l === NIL) return { root: this.at(this.right, n), min: n };
    const res = this.removeMin(l);
    this.left[n] = res.root;
    return { root: this.balance(n), min: res.min };
  }

  private removeAt(n: number, value: number, tie: number): number {
    if (n === NIL) return NIL;
    const c = this.compare(value, tie, this.at(this.value, n), this.at(this.tie, n));
    if (c < 0) this.left[n] = this.removeAt(this.at(this.left, n), value, tie);
    else if (c > 0) this.right[n] = this.removeAt(this.at(this.right, n), value, tie);
    else {
      const l = this.at(this.left, n);
      const r = this.at(this.right, n);
      this.freeNodes.push(n);
      if (l === NIL) return r;
      if (r === NIL) return l;
      const { root, min } = this.removeMin(r);
      this.left[min] = l;
      this.right[min] = root;
      return this.balance(min);
    }
    return this.balance(n);
  }
}
