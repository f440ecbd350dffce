#!/usr/bin/env python3
"""Train the bundled flow-matching model: a time-conditioned vector field that carries N(0, I) noise
to scikit-learn's two moons, written as an ``amsc_dynamics`` model (dynamics.yaml + W1.npy, W2.npy,
U1.npy) with the evaluation sets (noise.npy: 500 initial states; data.npy: 500 held-out points of
the data; float_samples.npy: what the float model makes of noise.npy). Deterministic (fixed seeds).

Flow matching (Lipman et al., "Flow Matching for Generative Modeling", ICLR 2023) with the linear
(rectified-flow) path: x_t = (1 - t) x0 + t x1, x0 ~ N(0, I), x1 from the data, and the vector field
v(x, t) = W2 tanh(W1 x + U1 t + b1) + b regresses the path's velocity x1 - x0. Integrating
dx/dt = v(x, t) from t = 0 to 1 maps noise to data. The moons (make_moons, noise 0.05) are
standardized. The MLP (64 hidden units) is trained here in numpy (minibatch Adam), then fine-tuned
with W1 and W2 on the generic PDK's 16 levels in the forward pass (straight-through), so the weights
the weights written are exactly on those levels (U1 and the biases stay exact: transconductors and
bias currents in the circuit). The float model before that fine-tuning is the reference of quality:
its samples from the same 500 initial states are written to float_samples.npy.

The script prints the energy distance of 500 generated samples to held-out data, for the float and
the quantized model (solve_ivp), next to the distance between two data sets of that size.

Run:  .venv/bin/python designs/flow_moons/make_model.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml
from scipy.integrate import solve_ivp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from numpy_train import Adam, quantize  # noqa: E402  (designs/numpy_train.py)
HIDDEN = 64
SAMPLES = 500
QAT_LR = 3e-3    # the straight-through fine-tuning's step: 1e-3 left the quantized model 2x the float one's distance


def moons(n: int, seed: int) -> np.ndarray:
    from sklearn.datasets import make_moons

    x, _ = make_moons(n, noise=0.05, random_state=seed)
    return x


def field(params, x, t, q=False):
    W1, U1, b1, W2, b2 = params
    w1, w2 = (quantize(W1), quantize(W2)) if q else (W1, W2)
    h = np.tanh(x @ w1.T + t[:, None] * U1[:, 0] + b1)
    return h @ w2.T + b2, h, w1, w2


def train(data: np.ndarray, seed: int = 0, steps: int = 20000, qat: int = 10000, batch: int = 512):
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, 1.0, (HIDDEN, 2)), rng.normal(0, 1.0, (HIDDEN, 1)), rng.normal(0, 0.5, HIDDEN),
              rng.normal(0, 1.0 / np.sqrt(HIDDEN), (2, HIDDEN)), np.zeros(2)]
    opt = Adam(params)
    for k in range(1, steps + qat + 1):
        q = k > steps
        if k == steps + 1:
            trained = [p.copy() for p in params]
        x1 = data[rng.integers(0, len(data), batch)]
        x0 = rng.standard_normal((batch, 2))
        t = rng.random(batch)
        xt = (1 - t)[:, None] * x0 + t[:, None] * x1
        out, h, w1, w2 = field(params, xt, t, q)
        g_out = 2 * (out - (x1 - x0)) / batch
        g_h = (g_out @ w2) * (1 - h ** 2)
        grads = [g_h.T @ xt, (g_h * t[:, None]).sum(0)[:, None], g_h.sum(0), g_out.T @ h, g_out.sum(0)]
        lr = 1e-2 * (0.05 ** (k / steps)) if not q else QAT_LR * (0.1 ** ((k - steps) / qat))
        opt.step(k, grads, lr)
    return trained, params


def generate(params, x0: np.ndarray, q: bool) -> np.ndarray:
    def f(t, y):
        return field(params, y.reshape(-1, 2), np.full(len(y) // 2, t), q)[0].ravel()
    return solve_ivp(f, (0, 1), x0.ravel(), rtol=1e-8, atol=1e-10).y[:, -1].reshape(-1, 2)


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.spatial.distance import cdist

    return float(2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean())


def main() -> None:
    raw = moons(4000, 0)
    mu, sd = raw.mean(axis=0), raw.std(axis=0)
    data = (raw - mu) / sd
    trained, params = train(data)
    W1, U1, b1, W2, b2 = params
    W1q, W2q = quantize(W1), quantize(W2)
    b1r, b2r, U1r = np.round(b1, 6), np.round(b2, 6), np.round(U1, 6)
    np.save(HERE / "W1.npy", W1q)
    np.save(HERE / "W2.npy", W2q)
    np.save(HERE / "U1.npy", U1r)
    rng = np.random.default_rng(7)
    noise = rng.standard_normal((SAMPLES, 2))
    held = (moons(SAMPLES, 1) - mu) / sd
    np.save(HERE / "noise.npy", noise)
    np.save(HERE / "data.npy", held)
    doc = {"amsc_dynamics": 1, "name": "flow_moons", "states": 2, "tau": 1.0, "activation": "tanh",
           "inputs": [{"name": "t", "kind": "time"}],
           "vector_field": {"hidden": HIDDEN, "W1": {"file": "W1.npy"}, "b1": b1r.tolist(), "U1": {"file": "U1.npy"},
                            "W2": {"file": "W2.npy"}},
           "b": b2r.tolist(), "x0": noise[0].tolist(), "t_end": 1.0}
    text = ("# Flow matching onto two moons (make_model.py): dx/dt = W2 tanh(W1 x + U1 t + b1) + b carries\n"
            "# N(0, I) at t = 0 to the data at t = 1; W1 and W2 on 16 levels\n" + yaml.safe_dump(doc, sort_keys=False))
    (HERE / "dynamics.yaml").write_text(text)
    qp = [W1q, U1r, b1r, W2q, b2r]
    fl = generate(trained, noise, False)
    np.save(HERE / "float_samples.npy", fl)
    qu = generate(qp, noise, False)
    other = (moons(SAMPLES, 2) - mu) / sd
    print(f"energy distance to {SAMPLES} held-out points: float model {energy_distance(fl, held):.4f}, quantized "
          f"{energy_distance(qu, held):.4f}; two data sets {energy_distance(other, held):.4f}; the noise itself "
          f"{energy_distance(noise, held):.4f}")


if __name__ == "__main__":
    main()
