// The Cartesian product of the dimensions flagged grid_search, like sockeye-recipes' generate_hpm.
//
// Order: the grid dimensions in the search space's key order, the LAST one varying fastest
// (itertools.product order); values in the order listed (categorical) or ascending (uniformint,
// quniform, qloguniform). Dimensions not flagged are drawn at random (seeded) for each grid point.
//
// Duplicate categories are de-duplicated for the grid (first occurrence kept): PanDA's example
// lists [1, 1, 2], and evaluating the same combination twice would waste a grid slot. (The random
// sampler keeps duplicates, where they weight the draw.)
//
// Conditions: a grid dimension whose condition does not hold is left out of the point, and of all
// the combinations that differ only in that dimension's value just the first is issued, so each
// distinct point appears once. For that to be decidable from the grid alone, a conditional grid
// dimension's parent must be a grid dimension too.
//
// The grid is never materialised: combination i is decoded from its index, so the state is the
// index of the next combination and the Rng state.
import { unreachable, ValidationError } from "../../protocol/errors.ts";
import { Rng, type RngState } from "../core/rng.ts";
import type { GridSamplerState } from "./state.ts";
import { type Parameter, type SearchSpace } from "../../protocol/searchSpace.ts";
import {
  conditionHolds,
  multipleRange,
  parameterOrder,
  quantize,
  type Point,
  type PointValue,
} from "../../protocol/points.ts";
import { samplePoint } from "./draw.ts";
import { checkAskCount, checkTell, type Sampler } from "./sampler.ts";

const isGrid = (p: Parameter) => p.dimension.grid_search === 1 || p.dimension.grid_search === true;

/** The values of a grid dimension in grid order, computed by index so ranges are never listed. */
export interface GridAxis {
  size: number;
  at(k: number): PointValue;
}

export function gridAxis(p: Parameter): GridAxis {
  switch (p.method) {
    case "categorical": {
      const values: PointValue[] = [];
      for (const c of p.dimension.categories) if (!values.some((v) => v === c)) values.push(c);
      return { size: values.length, at: (k) => values[k] as PointValue };
    }
    case "uniformint": {
      const { low, high } = p.dimension;
      return { size: high - low + 1, at: (k) => low + k };
    }
    case "quniform":
    case "qloguniform": {
      const { low, high, q } = p.dimension;
      const [kLo, kHi] = multipleRange(low, high, q);
      return { size: kHi - kLo + 1, at: (k) => quantize(kLo + k, q) };
    }
    case "uniform":
    case "loguniform":
    case "normal":
    case "lognormal":
      throw new ValidationError("INVALID_SEARCH_SPACE", `${p.method} cannot be a grid dimension`);
    default:
      return unreachable(p, "parameter");
  }
}

interface GridDim extends GridAxis {
  name: string;
  param: Parameter;
}

export class GridSampler implements Sampler {
  private readonly rng: Rng;
  private readonly order: string[];
  private readonly dims: GridDim[]; // in the space's key order: the product's digit order
  private readonly byParentOrder: GridDim[]; // parents first, for evaluating conditions
  /** Number of combinations, including those skipped for inactive dimensions. */
  readonly combinations: number;
  private cursor: number;

  constructor(
    private readonly space: SearchSpace,
    seed: number | { rng: RngState; cursor: number },
  ) {
    this.order = parameterOrder(space);
    this.dims = Object.entries(space)
      .filter(([, p]) => isGrid(p))
      .map(([name, param]) => ({ name, param, ...gridAxis(param) }));
    if (this.dims.length === 0)
      throw new ValidationError(
        "INVALID_CONFIG",
        `sampler type "grid" needs at least one parameter with "grid_search": 1 in its dimension; flag one (categorical, uniformint, quniform or qloguniform) or use type "random"`,
      );
    for (const d of this.dims) {
      const parent = d.param.condition?.param;
      if (parent !== undefined && !this.dims.some((g) => g.name === parent))
        throw new ValidationError(
          "INVALID_SEARCH_SPACE",
          `search space "${d.name}".condition: grid dimension "${d.name}" depends on "${parent}", which is not a grid dimension; flag "${parent}" with "grid_search": 1 too, or unflag "${d.name}"`,
        );
    }
    this.byParentOrder = this.order.flatMap((n) => this.dims.filter((d) => d.name === n));
    this.combinations = this.dims.reduce((acc, d) => acc * d.size, 1);
    if (!Number.isSafeInteger(this.combinations))
      throw new ValidationError(
        "INVALID_CONFIG",
        `the grid has more than 2^53 combinations (${this.dims.map((d) => `${d.name}: ${d.size}`).join(", ")}); flag fewer dimensions with grid_search`,
      );
    const restored = typeof seed === "number" ? undefined : seed;
    if (restored && restored.cursor > this.combinations)
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `grid sampler state: cursor ${restored.cursor} is past the grid's ${this.combinations} combinations; the state belongs to another search space`,
      );
    this.rng = new Rng(restored ? ([...restored.rng] as RngState) : (seed as number));
    this.cursor = restored?.cursor ?? 0;
  }

  /** The grid values of combination i, or undefined when it is a duplicate of an earlier one. */
  private combination(i: number): Point | undefined {
    const digit = new Map<string, number>();
    let rest = i;
    for (let d = this.dims.length - 1; d >= 0; d--) {
      const dim = this.dims[d] as GridDim;
      digit.set(dim.name, rest % dim.size);
      rest = Math.floor(rest / dim.size);
    }
    const fixed: Point = {};
    for (const dim of this.byParentOrder) {
      const k = digit.get(dim.name) ?? 0;
      if (conditionHolds(dim.param, fixed)) fixed[dim.name] = dim.at(k);
      else if (k !== 0) return undefined;
    }
    return fixed;
  }

  ask(n: number): Point[] {
    checkAskCount(n);
    const out: Point[] = [];
    while (out.length < n && this.cursor < this.combinations) {
      const fixed = this.combination(this.cursor++);
      if (fixed) out.push(samplePoint(this.space, this.rng, fixed, this.order));
    }
    return out;
  }

  tell(point: Point, loss: number | null): void {
    checkTell(this.space, point, loss);
  }

  snapshot(): GridSamplerState {
    return { type: "grid", rng: this.rng.state(), cursor: this.cursor };
  }
}
