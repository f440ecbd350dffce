#!/usr/bin/env python3
"""Build the bundled Hopfield associative memory: scikit-learn's 8x8 digits, one binarized pattern
per class (10 patterns of 64 bits), stored in a continuous Hopfield network written as an
``amsc_dynamics`` model (dynamics.yaml + W.npy), with corrupted probes to retrieve them from.
Deterministic (fixed seeds).

- Patterns: pixel p of class c is +1 where the class's mean image is >= 6 (of 16), else -1.
- Weights: the projection (pseudo-inverse) rule, W = g (X+ X - diag), for X the 10 x 64 patterns
  (L. Personnaz, I. Guyon, G. Dreyfus, "Collective computational properties of neural networks:
  New learning mechanisms", Phys. Rev. A 34(5):4217, 1986). The digits' patterns overlap by 0.3-0.9,
  more than the Hebbian rule's capacity allows; the projection rule stores them as fixed points. W is
  symmetric with a zero diagonal; gain g = 4 makes each pattern an attractor of
  tau dx/dt = -x + W tanh(x) (fixed points x = g' p with g' = g tanh(g'), here 4.0).
- Probes: for each of 10 %, 20 % and 30 % of the 64 bits flipped, 50 probes (5 per class), each a
  stored pattern with that many bits, chosen at random, inverted: probes.npy [150, 64] are the
  initial states (+-1) and targets.npy [150, 64] the patterns they should settle to. The levels
  are interleaved, so the first 3 m probes (``--samples``) hold m of each. Flipping 10 %, 20 % and
  30 % of 64 bits rounds to 6, 13 and 19 bits (9.4 %, 20.3 %, 29.7 %).

Run:   .venv/bin/python designs/hopfield_digits/make_model.py
Then:  amsc compile designs/hopfield_digits/dynamics.yaml -o build/hopfield_digits
       amsc evaluate build/hopfield_digits --inputs designs/hopfield_digits/probes.npy \\
           --labels designs/hopfield_digits/targets.npy
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
GAIN = 4.0
FLIPS = (0.1, 0.2, 0.3)
PER_LEVEL = 50
T_END = 20.0


def patterns() -> np.ndarray:
    d = load_digits()
    return np.array([np.where(d.images[d.target == c].mean(0) >= 6, 1.0, -1.0).ravel() for c in range(10)])


def weights(x: np.ndarray) -> np.ndarray:
    p = x.T @ np.linalg.pinv(x @ x.T) @ x
    return GAIN * (p - np.diag(np.diag(p)))


def probes(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = x.shape[1]
    x0, tgt = [], []
    for k in range(PER_LEVEL):        # interleaved: the first 3 m probes hold m of each level
        for frac in FLIPS:
            p = x[k % len(x)].copy()
            p[rng.choice(n, int(round(frac * n)), replace=False)] *= -1
            x0.append(p)
            tgt.append(x[k % len(x)])
    return np.array(x0), np.array(tgt)


def main() -> int:
    x = patterns()
    w = weights(x)
    w = 0.5 * (w + w.T)            # symmetric to the last bit
    np.save(HERE / "W.npy", w)
    np.save(HERE / "patterns.npy", x)
    x0, tgt = probes(x)
    np.save(HERE / "probes.npy", x0)
    np.save(HERE / "targets.npy", tgt)
    doc = {"amsc_dynamics": 1, "name": "hopfield_digits", "states": int(x.shape[1]), "tau": 1.0,
           "activation": "tanh", "W": {"file": "W.npy"}, "x0": x0[0].tolist(), "t_end": T_END}
    (HERE / "dynamics.yaml").write_text("# A Hopfield memory of the 10 binarized digits (make_model.py); x0 is the "
                                        "first probe\n" + yaml.safe_dump(doc, sort_keys=False))
    print(f"hopfield_digits: {len(x)} patterns of {x.shape[1]} bits, {len(x0)} probes "
          f"({PER_LEVEL} each at {', '.join(f'{int(100 * f)} %' for f in FLIPS)} of the bits flipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
