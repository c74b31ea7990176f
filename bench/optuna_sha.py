"""Optuna's SuccessiveHalvingPruner on a recorded report sequence (gridtune scheduler benchmark).

Usage: /usr/bin/python3 bench/optuna_sha.py REPORTS.jsonl MAX_T REDUCTION_FACTOR

Each input line is {"t": trial number, "s": step, "v": value}, in the order the gridtune benchmark
sent them to its own scheduler. A trial is asked for at its first report; a report at a step
below MAX_T is `trial.report(v, s)` followed by `should_prune()` ("P" and the trial is told
PRUNED, else "C"); a report at MAX_T tells the trial COMPLETE ("S"). Prints one JSON object:
the decision letters, the report count, the seconds spent in Optuna, the peak RSS and the version.
In-memory storage, as in the spec's vectors (RDB storage counts a trial's own value twice).
"""

import json
import resource
import sys
import time

import optuna
from optuna.trial import TrialState


def main() -> None:
    path, max_t, rf = sys.argv[1], float(sys.argv[2]), int(float(sys.argv[3]))
    with open(path, encoding="utf-8") as f:
        reports = [json.loads(line) for line in f if line.strip()]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=rf, min_early_stopping_rate=0)
    study = optuna.create_study(direction="minimize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    open_trials = {}
    decisions = []
    start = time.perf_counter()
    for r in reports:
        t, step, value = r["t"], r["s"], r["v"]
        trial = open_trials.get(t)
        if trial is None:
            trial = study.ask()
            open_trials[t] = trial
        if step >= max_t:
            study.tell(trial, value)
            del open_trials[t]
            decisions.append("S")
            continue
        trial.report(value, int(step))
        if trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            del open_trials[t]
            decisions.append("P")
        else:
            decisions.append("C")
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "optuna": optuna.__version__,
                "reports": len(reports),
                "seconds": seconds,
                "decisions": "".join(decisions),
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    main()
