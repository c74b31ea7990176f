"""Deterministic "two moons" data set for the quickstart payload (pure Python, no numpy).

The same (n, noise, seed) always yields the same points, on any machine and Python 3 version,
so losses are comparable between evaluations and a resumed training sees the same data.
"""
import math
import random


def make_moons(n, noise=0.15, seed=0):
    """Returns a list of (x1, x2, label) with n points, half per moon, shuffled."""
    rng = random.Random(seed)
    points = []
    for i in range(n):
        label = i % 2
        t = math.pi * rng.random()
        if label == 0:
            x1, x2 = math.cos(t), math.sin(t)
        else:
            x1, x2 = 1.0 - math.cos(t), 0.5 - math.sin(t)
        # Gaussian noise, then centre the two moons around the origin for a well-conditioned input.
        x1 += rng.gauss(0.0, noise) - 0.5
        x2 += rng.gauss(0.0, noise) - 0.25
        points.append((x1, x2, label))
    rng.shuffle(points)
    return points


def train_validation_split(n_train=400, n_validation=200, noise=0.15, seed=0):
    """The fixed split used by train.py: validation points come from a different seed."""
    return make_moons(n_train, noise, seed), make_moons(n_validation, noise, seed + 1000)


if __name__ == "__main__":
    for x1, x2, y in make_moons(10):
        print(f"{x1:+.4f} {x2:+.4f} {y}")
