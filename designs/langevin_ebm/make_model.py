#!/usr/bin/env python3
"""Fit the bundled Langevin sampler: an energy-based model of a 2-D Gaussian mixture whose score
an MLP vector field learns, written as an ``amsc_dynamics`` model with noise (dynamics.yaml + W1.npy,
W2.npy). Deterministic (fixed seeds).

Overdamped Langevin dynamics, dx = (1/2) grad log p(x) dt + dW, has p as its stationary density
(sigma = 1, tau = 1 in amsc's ``tau dx/dt = f(x) + sigma xi``: f = (sigma^2 / 2) grad log p). p is
a mixture of three isotropic Gaussians (standard deviation 0.55) centred on a circle of radius 1.3,
close enough for the sampler to hop between them every few time units. The model is
f(x) = W2 tanh(W1 x + b1) + b with 48 hidden units, fitted here in numpy (full-batch Adam) to the
exact f at points drawn from p and from a box around it (so that it pulls back from outside), then
fine-tuned with W1 and W2 on the generic PDK's 16 levels in the forward pass (straight-through), so
the weights written are exactly on those levels.

The script prints the energy distance (Szekely and Rizzo) between samples of p and Euler-Maruyama
runs of the quantized model (64 chains from the origin, 50 time units each after a burn-in of 10,
one sample per half time unit), next to the distance between two independent sample sets of p.

Run:  .venv/bin/python designs/langevin_ebm/make_model.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from numpy_train import Adam, init_mlp, quantize  # noqa: E402  (designs/numpy_train.py)
MEANS = 1.3 * np.array([[np.cos(a), np.sin(a)] for a in np.deg2rad([90.0, 210.0, 330.0])])
STD = 0.55
HIDDEN = 48
T_END = 120.0
DECAY = 0.05


def score(x: np.ndarray) -> np.ndarray:
    """grad log p of the mixture at points x [P, 2]."""
    d = x[:, None, :] - MEANS[None]                        # [P, K, 2]
    logw = -np.sum(d ** 2, axis=2) / (2 * STD ** 2)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return -np.sum(w[:, :, None] * d, axis=1) / STD ** 2


def sample_p(n: int, rng) -> np.ndarray:
    k = rng.integers(0, len(MEANS), n)
    return MEANS[k] + STD * rng.standard_normal((n, 2))


def fit(seed: int = 0, steps: int = 6000, qat: int = 3000):
    rng = np.random.default_rng(seed)
    pts = np.concatenate([sample_p(3000, rng), rng.uniform(-3.0, 3.0, (2000, 2))])
    tgt = 0.5 * score(pts)
    params = init_mlp(rng, HIDDEN, 2)
    W1, b1, W2, b2 = params
    opt = Adam(params)
    for k in range(1, steps + qat + 1):
        q = k > steps
        w1, w2 = (quantize(W1), quantize(W2)) if q else (W1, W2)
        h = np.tanh(pts @ w1.T + b1)
        err = h @ w2.T + b2 - tgt
        g_out = 2 * err / len(pts)
        g_h = (g_out @ w2) * (1 - h ** 2)
        # keep the hidden units out of deep saturation: the pre-activations' mean square is penalized
        # (a tanh stage at |h| > 10 gives ngspice a flat activation it fails to step through)
        pre = pts @ w1.T + b1
        g_pre = g_h + 2 * DECAY * pre / pre.size
        grads = [g_pre.T @ pts, g_pre.sum(0), g_out.T @ h, g_out.sum(0)]
        lr = 3e-2 * (0.1 ** (k / steps)) if not q else 3e-3 * (0.1 ** ((k - steps) / qat))
        opt.step(k, grads, lr)
    return quantize(W1), b1, quantize(W2), b2, float(np.sqrt(np.mean(err ** 2)))


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.spatial.distance import cdist

    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())


def langevin(W1, b1, W2, b2, chains: int, t_run: float, burn: float, every: float, h: float, rng) -> np.ndarray:
    """Euler-Maruyama of independent chains from the origin: their states every ``every`` after ``burn``."""
    x = np.zeros((chains, 2))
    out = []
    keep = int(round(every / h))
    for k in range(1, int(round(t_run / h)) + 1):
        x = x + h * (np.tanh(x @ W1.T + b1) @ W2.T + b2) + np.sqrt(h) * rng.standard_normal(x.shape)
        if k * h > burn and k % keep == 0:
            out.append(x.copy())
    return np.concatenate(out)


def main() -> None:
    W1, b1, W2, b2, rms = fit()
    np.save(HERE / "W1.npy", W1)
    np.save(HERE / "W2.npy", W2)
    doc = {"amsc_dynamics": 1, "name": "langevin_ebm", "states": 2, "tau": 1.0, "activation": "tanh",
           "vector_field": {"hidden": HIDDEN, "W1": {"file": "W1.npy"}, "b1": np.round(b1, 6).tolist(),
                            "W2": {"file": "W2.npy"}},
           "b": np.round(b2, 6).tolist(), "x0": [0.0, 0.0], "t_end": T_END, "noise": {"sigma": 1.0}}
    text = ("# Langevin sampler of a 3-component Gaussian mixture (make_model.py): dx/dt = W2 tanh(W1 x + b1) + b + xi,\n"
            "# the MLP fitted to half the mixture's score, W1 and W2 on 16 levels\n" + yaml.safe_dump(doc, sort_keys=False))
    (HERE / "dynamics.yaml").write_text(text)
    rng = np.random.default_rng(1)
    run = langevin(W1, np.round(b1, 6), W2, np.round(b2, 6), 64, 60.0, 10.0, 0.5, 1e-3, rng)
    p1, p2 = sample_p(run.shape[0], rng), sample_p(run.shape[0], rng)
    print(f"fit RMS {rms:.4f}; energy distance to p: Langevin (quantized) {energy_distance(run, p1):.4f}, "
          f"two sample sets of p {energy_distance(p1, p2):.4f} ({run.shape[0]} samples each)")


if __name__ == "__main__":
    main()
