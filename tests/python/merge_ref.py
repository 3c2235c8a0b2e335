#!/usr/bin/env python3
"""Independent reference for Lathe's merge methods, written from mergekit's definitions
(generalized task arithmetic: sparsify, weight, optional sign consensus, normalise, lambda).

  python3 merge_ref.py OUT.json    writes random updates and every deterministic method's result
"""
import json
import sys

import numpy as np


def magnitude(x, density):
    if density >= 1:
        return x.copy()
    k = int(density * x.size)
    out = np.zeros_like(x)
    if k <= 0:
        return out
    flat = x.reshape(-1)
    idx = np.argsort(-np.abs(flat), kind="stable")[:k]
    o = out.reshape(-1)
    o[idx] = flat[idx]
    return out


def merge(deltas, weights, densities, sparsify, consensus, normalize, lam):
    ds = [magnitude(d, dn) if sparsify else d for d, dn in zip(deltas, densities)]
    w = np.array(weights).reshape(-1, 1, 1)
    weighted = np.stack(ds) * w
    if consensus:
        if consensus == "total":
            sign_weight = weighted.sum(0)
        else:
            sign_weight = np.sign(weighted).sum(0)
        majority = np.where(sign_weight >= 0, 1.0, -1.0)
        mask = np.sign(weighted) == majority
        mixed = (weighted * mask).sum(0)
        divisor = (w * mask).sum(0)
        divisor[divisor == 0] = 1
    else:
        mixed = weighted.sum(0)
        divisor = np.broadcast_to(w.sum(0), mixed.shape).copy()
        divisor[np.abs(divisor) < 1e-8] = 1
    if normalize:
        mixed = mixed / divisor
    return mixed * lam


def main():
    rng = np.random.default_rng(7)
    deltas = [rng.normal(size=(6, 10)) for _ in range(3)]
    deltas[2][0, :] = 0.0  # a row this adapter does not touch
    weights = [1.0, 0.5, 0.8]
    densities = [0.5, 0.7, 0.3]
    cases = {
        "linear": merge(deltas, weights, densities, False, None, True, 1.0),
        "task_arithmetic": merge(deltas, weights, densities, False, None, False, 0.7),
        "ties_total": merge(deltas, weights, densities, True, "total", True, 1.0),
        "ties_frequency": merge(deltas, weights, densities, True, "frequency", True, 1.0),
        "ties_unnormalized": merge(deltas, weights, densities, True, "total", False, 1.3),
        "magnitude_prune": merge(deltas, weights, densities, True, None, True, 1.0),
    }
    out = {"shape": [6, 10], "weights": weights, "densities": densities,
           "deltas": [d.reshape(-1).tolist() for d in deltas],
           "expected": {k: v.reshape(-1).tolist() for k, v in cases.items()}}
    json.dump(out, open(sys.argv[1], "w"))


if __name__ == "__main__":
    main()
