#!/usr/bin/env python3
"""gridtune quickstart payload: trains a small MLP on the two-moons data by minibatch SGD.

Pure Python 3 (no numpy), so it runs in gridtune/python:1 and on any host python3.

The PanDA evaluation-container contract, all files in the current working directory:
  input.json        the point (read):
                      lr          float  learning rate               (default 0.1)
                      hidden      int    hidden units, 1..256         (default 8)
                      batch_size  int    minibatch size, 1..4096      (default 16)
                      momentum    float  SGD momentum, 0..0.99        (default 0.0)
                      activation  str    "tanh" or "relu"             (default "tanh")
                      epochs      int    the epoch to reach, 1..10000 (default 20). ASHA jobs set
                                         it to the rung's resource level; with a checkpoint from
                                         a lower rung, training continues from there.
                      seed        int    initialisation/shuffle seed  (default 0)
                    Unknown keys are ignored (reported in the message).
  checkpoint/state.json  written after every epoch (atomically); read at start to resume.
  progress.jsonl    one line per epoch: {"epoch", "loss" (validation), "accuracy", "train_loss"};
                    the same JSON is printed on stdout as "GRIDTUNE_PROGRESS {json}".
  output.json       {"status": 0, "loss": <final validation loss>, "message": "..."}; status 1
                    with a message (and exit code 1) when the input is invalid.
Optional (argument or environment):
  --metrics FILE / GRIDTUNE_METRICS   a .tgz holding metrics.csv (one row per epoch)
  --metrics-csv FILE                  the per-epoch CSV alone (exec_in_container.sh tars it)
  --meta FILE / GRIDTUNE_META         a JSON dictionary describing the run (< 1 MB)
"""
import argparse
import csv
import io
import json
import math
import os
import random
import sys
import tarfile
import time

from moons import train_validation_split

CHECKPOINT = os.path.join("checkpoint", "state.json")
DEFAULTS = {"lr": 0.1, "hidden": 8, "batch_size": 16, "momentum": 0.0, "activation": "tanh", "epochs": 20, "seed": 0}
CSV_FIELDS = ["epoch", "train_loss", "val_loss", "val_accuracy", "seconds"]


class InvalidInput(Exception):
    pass


def read_point(path="input.json"):
    try:
        with open(path) as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise InvalidInput(f"{path} is missing from the working directory {os.getcwd()}")
    except ValueError as e:
        raise InvalidInput(f"{path} is not valid JSON: {e}")
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path} must hold a JSON object, got {type(raw).__name__}")
    p = dict(DEFAULTS)
    p.update({k: raw[k] for k in DEFAULTS if k in raw})
    unknown = sorted(k for k in raw if k not in DEFAULTS)

    def number(key, lo, hi, integer=False):
        v = p[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidInput(f"{key} must be a finite number, got {v!r}")
        if integer:
            if float(v) != int(v):
                raise InvalidInput(f"{key} must be an integer, got {v!r}")
            v = int(v)
        if not lo <= v <= hi:
            raise InvalidInput(f"{key} must be within [{lo}, {hi}], got {v!r}")
        p[key] = v

    number("lr", 1e-6, 10.0)
    number("hidden", 1, 256, integer=True)
    number("batch_size", 1, 4096, integer=True)
    number("momentum", 0.0, 0.99)
    number("epochs", 1, 10000, integer=True)
    number("seed", 0, 2**31 - 1, integer=True)
    if p["activation"] not in ("tanh", "relu"):
        raise InvalidInput(f"activation must be \"tanh\" or \"relu\", got {p['activation']!r}")
    return p, unknown


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class MLP:
    """2 inputs -> `hidden` units -> 1 sigmoid output, binary cross-entropy."""

    def __init__(self, hidden, activation, rng):
        s1, s2 = 1.0 / math.sqrt(2), 1.0 / math.sqrt(hidden)
        self.activation = activation
        self.w1 = [[rng.gauss(0, s1) for _ in range(2)] for _ in range(hidden)]
        self.b1 = [0.0] * hidden
        self.w2 = [rng.gauss(0, s2) for _ in range(hidden)]
        self.b2 = 0.0

    def params(self):
        return {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}

    def load(self, state):
        self.w1, self.b1, self.w2, self.b2 = state["w1"], state["b1"], state["w2"], state["b2"]

    def _hidden(self, x1, x2):
        pre = [w[0] * x1 + w[1] * x2 + b for w, b in zip(self.w1, self.b1)]
        if self.activation == "tanh":
            return pre, [math.tanh(z) for z in pre]
        return pre, [z if z > 0 else 0.0 for z in pre]

    def predict(self, x1, x2):
        _, h = self._hidden(x1, x2)
        return sigmoid(sum(w * a for w, a in zip(self.w2, h)) + self.b2)

    def loss_and_grads(self, batch):
        n = len(batch)
        hidden = len(self.b1)
        g_w1 = [[0.0, 0.0] for _ in range(hidden)]
        g_b1 = [0.0] * hidden
        g_w2 = [0.0] * hidden
        g_b2 = 0.0
        total = 0.0
        for x1, x2, y in batch:
            pre, h = self._hidden(x1, x2)
            p = sigmoid(sum(w * a for w, a in zip(self.w2, h)) + self.b2)
            total += bce(p, y)
            d_out = (p - y) / n
            g_b2 += d_out
            for j in range(hidden):
                g_w2[j] += d_out * h[j]
                if self.activation == "tanh":
                    d_h = d_out * self.w2[j] * (1.0 - h[j] * h[j])
                else:
                    d_h = d_out * self.w2[j] if pre[j] > 0 else 0.0
                g_w1[j][0] += d_h * x1
                g_w1[j][1] += d_h * x2
                g_b1[j] += d_h
        return total / n, {"w1": g_w1, "b1": g_b1, "w2": g_w2, "b2": g_b2}


def bce(p, y):
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return -(y * math.log(p) + (1 - y) * math.log(1.0 - p))


def evaluate(model, data):
    loss = correct = 0
    for x1, x2, y in data:
        p = model.predict(x1, x2)
        loss += bce(p, y)
        correct += (p >= 0.5) == (y == 1)
    return loss / len(data), correct / len(data)


def sgd_step(model, grads, velocity, lr, momentum):
    """In-place momentum SGD on the nested lists of parameters."""

    def upd(params, g, v):
        for i in range(len(params)):
            if isinstance(params[i], list):
                upd(params[i], g[i], v[i])
            else:
                v[i] = momentum * v[i] - lr * g[i]
                params[i] += v[i]

    for key in ("w1", "b1", "w2"):
        upd(getattr(model, key), grads[key], velocity[key])
    velocity["b2"] = momentum * velocity["b2"] - lr * grads["b2"]
    model.b2 += velocity["b2"]


def zeros_like(params):
    if isinstance(params, list):
        return [zeros_like(x) for x in params]
    return 0.0


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def architecture(p):
    return {"hidden": p["hidden"], "activation": p["activation"], "seed": p["seed"]}


def load_checkpoint(p):
    """Returns the saved state when it exists and fits this point's architecture, else None."""
    try:
        with open(CHECKPOINT) as f:
            state = json.load(f)
    except FileNotFoundError:
        return None, "no checkpoint"
    except ValueError as e:
        return None, f"ignored an unreadable checkpoint ({e})"
    if state.get("architecture") != architecture(p):
        return None, "ignored a checkpoint of another architecture"
    return state, f"resumed from epoch {state['epoch']}"


def metrics_csv(history):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: row[k] for k in CSV_FIELDS})
    return buf.getvalue().encode()


def write_metrics_tgz(path, history):
    data = metrics_csv(history)
    info = tarfile.TarInfo("metrics.csv")
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(info, io.BytesIO(data))


def write_output(status, loss, message):
    write_json_atomic("output.json", {"status": status, "loss": loss, "message": message})


def main(argv):
    ap = argparse.ArgumentParser(description="gridtune quickstart: MLP on two moons")
    ap.add_argument("--metrics", default=os.environ.get("GRIDTUNE_METRICS"), help="write a metrics .tgz")
    ap.add_argument("--metrics-csv", default=None, help="write the per-epoch CSV")
    ap.add_argument("--meta", default=os.environ.get("GRIDTUNE_META"), help="write a metadata JSON file")
    args = ap.parse_args(argv)

    try:
        p, unknown = read_point()
    except InvalidInput as e:
        print(f"train.py: invalid input: {e}", file=sys.stderr)
        write_output(1, None, f"invalid input: {e}")
        return 1

    train, validation = train_validation_split()
    model = MLP(p["hidden"], p["activation"], random.Random(p["seed"]))
    velocity = {k: zeros_like(v) for k, v in model.params().items()}
    history = []
    start_epoch = 0
    state, how = load_checkpoint(p)
    if state is not None:
        model.load(state["params"])
        velocity = state["velocity"]
        history = state["history"]
        start_epoch = state["epoch"]
    print(f"train.py: {how}; training epochs {start_epoch + 1}..{p['epochs']} with {json.dumps(p)}", flush=True)
    os.makedirs("checkpoint", exist_ok=True)

    for epoch in range(start_epoch + 1, p["epochs"] + 1):
        t0 = time.monotonic()
        # Per-epoch shuffle seeded by (seed, epoch): a resumed run sees the same order.
        order = list(train)
        random.Random(p["seed"] * 100003 + epoch).shuffle(order)
        train_loss = 0.0
        for i in range(0, len(order), p["batch_size"]):
            batch = order[i : i + p["batch_size"]]
            loss, grads = model.loss_and_grads(batch)
            sgd_step(model, grads, velocity, p["lr"], p["momentum"])
            train_loss += loss * len(batch)
        train_loss /= len(order)
        val_loss, val_acc = evaluate(model, validation)
        if not math.isfinite(val_loss):
            write_output(1, None, f"training diverged at epoch {epoch} (lr={p['lr']})")
            return 1
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc,
               "seconds": round(time.monotonic() - t0, 4)}
        history.append(row)
        write_json_atomic(CHECKPOINT, {"epoch": epoch, "architecture": architecture(p), "params": model.params(),
                                       "velocity": velocity, "history": history})
        progress = {"epoch": epoch, "loss": val_loss, "accuracy": val_acc, "train_loss": train_loss}
        with open("progress.jsonl", "a") as f:
            f.write(json.dumps(progress) + "\n")
        print("GRIDTUNE_PROGRESS " + json.dumps(progress), flush=True)

    if history:
        final = history[-1]
        val_loss, val_acc = final["val_loss"], final["val_accuracy"]
    else:
        val_loss, val_acc = evaluate(model, validation)
    reached = history[-1]["epoch"] if history else 0
    message = f"{how}; validation accuracy {val_acc:.3f} after {reached} epochs"
    if unknown:
        message += f"; ignored unknown keys {', '.join(unknown)}"
    if args.metrics_csv:
        os.makedirs(os.path.dirname(args.metrics_csv) or ".", exist_ok=True)
        with open(args.metrics_csv, "wb") as f:
            f.write(metrics_csv(history))
    if args.metrics:
        write_metrics_tgz(args.metrics, history)
    if args.meta:
        write_json_atomic(args.meta, {"payload": "gridtune-quickstart", "point": p, "epochs_trained": reached,
                                      "resumed_from_epoch": start_epoch, "n_train": len(train),
                                      "n_validation": len(validation), "validation_accuracy": val_acc,
                                      "python": sys.version.split()[0]})
    write_output(0, val_loss, message)
    print(f"train.py: done, validation loss {val_loss:.4f}, accuracy {val_acc:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # a bug or an I/O error: still leave a PanDA-format failure behind
        write_output(1, None, f"train.py failed: {type(e).__name__}: {e}")
        raise
