#!/usr/bin/python3
"""hpogrid shim: the `hpogrid generate` command of PanDA steering containers, on optuna.

    hpogrid generate --n_point N --max_point M --infile IN --outfile OUT [-l nevergrad|optuna|random] [--seed S]

Reads the iDDS steering input (IN: {"points": [[{point}, loss_or_null], ...], "opt_space": {...}}),
rebuilds an optuna study from the evaluated points (ask-and-tell: every point with a loss is told
as a completed trial), asks for min(N, M - points so far) new points and writes them to OUT as a
JSON list. Writes [] (which ends generation) when M points exist already.

-l=nevergrad (the PanDA documentation's example) is mapped to optuna's TPE: nevergrad is not
packaged for Debian. -l=random uses optuna's RandomSampler. The sampler seed is --seed plus the
number of points so far, so re-running an iteration on the same input gives the same points.
"""
import argparse
import json
import math
import sys

import optuna


def distribution(name, p):
    method, d = p.get("method"), p.get("dimension", {})
    if method == "categorical":
        cats = []
        for c in d["categories"]:
            if c not in cats:  # PanDA spaces may repeat a category to weight it; optuna wants unique choices
                cats.append(c)
        return optuna.distributions.CategoricalDistribution(cats)
    if method == "uniformint":
        return optuna.distributions.IntDistribution(int(d["low"]), int(d["high"]))
    if method in ("uniform", "normal"):
        return optuna.distributions.FloatDistribution(float(d["low"]), float(d["high"]))
    if method in ("loguniform", "lognormal"):
        return optuna.distributions.FloatDistribution(float(d["low"]), float(d["high"]), log=True)
    if method in ("quniform", "qloguniform"):
        q = float(d["q"])
        lo, hi = math.ceil(d["low"] / q - 1e-9), math.floor(d["high"] / q + 1e-9)
        if float(q).is_integer():
            return optuna.distributions.IntDistribution(int(lo * q), int(hi * q), step=int(q))
        return optuna.distributions.FloatDistribution(lo * q, hi * q, step=q)
    raise SystemExit(f"hpogrid: parameter {name!r}: method {method!r} is not supported by this shim")


def value_of(dist, v):
    if isinstance(dist, optuna.distributions.IntDistribution) and isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def main(argv):
    ap = argparse.ArgumentParser(prog="hpogrid")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate new points (iDDS steering protocol)")
    g.add_argument("--n_point", type=int, required=True)
    g.add_argument("--max_point", type=int, required=True)
    g.add_argument("--infile", required=True)
    g.add_argument("--outfile", required=True)
    g.add_argument("-l", "--library", default="optuna")
    g.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    library = a.library.lstrip("=")  # "-l=nevergrad" reaches argparse as "-l" "=nevergrad"
    if library not in ("nevergrad", "optuna", "random", "tpe"):
        raise SystemExit(f"hpogrid: unknown library {library!r}; use optuna, random or nevergrad (mapped to optuna)")
    if library == "nevergrad":
        print("hpogrid: nevergrad is not available here; using optuna's TPE sampler instead", file=sys.stderr)

    with open(a.infile) as f:
        doc = json.load(f)
    history = doc.get("points") or []
    space = doc.get("opt_space")
    if not isinstance(space, dict) or not space:
        raise SystemExit("hpogrid: the input has no opt_space (the search space); cannot generate points")
    n = min(a.n_point, a.max_point - len(history))
    if n <= 0:
        with open(a.outfile, "w") as f:
            json.dump([], f)
        print(f"hpogrid: {len(history)} points exist (max {a.max_point}); nothing to generate", file=sys.stderr)
        return 0

    # Conditional parameters (a "condition" next to method) are left out when their condition fails
    # in gridtune; this shim samples only unconditional parameters and passes the rest through.
    dists = {k: distribution(k, p) for k, p in space.items() if "condition" not in p}
    seed = a.seed + len(history)
    sampler = (
        optuna.samplers.RandomSampler(seed=seed)
        if library == "random"
        else optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    told = 0
    for point, loss in history:
        if loss is None:
            continue  # generated, not evaluated yet: nothing to tell
        params = {k: value_of(d, point[k]) for k, d in dists.items() if k in point}
        if len(params) != len(dists):
            continue
        try:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=float(loss)))
            told += 1
        except ValueError as e:  # a point outside this shim's view of the space (e.g. an old space)
            print(f"hpogrid: skipping a history point: {e}", file=sys.stderr)
    out = []
    for _ in range(n):
        trial = study.ask(dists)
        out.append(dict(trial.params))
    with open(a.outfile, "w") as f:
        json.dump(out, f)
    print(f"hpogrid: told {told} evaluated points, generated {len(out)} with {type(sampler).__name__}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
