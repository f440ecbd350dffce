"""The calibration read set: per tile, a seeded sample of the word-line vectors it reads on the
calibration inputs (the float IR evaluated up to the tiles). The column calibration
(passes/calibrate.py), the fault-aware placement's row weights (passes/fault_map.py) and the Monte
Carlo's calibration (eval/evaluate.py) read through it."""

from __future__ import annotations

import numpy as np

#: calibration inputs evaluated for the read set, and the vectors kept per tile
CAL_INPUTS = 64
CAL_VECTORS = 512


class ReadSampler:
    """A seeded sample of at most CAL_VECTORS read vectors per tile over every read of a run (all
    images, all positions, every time step): ``add`` each read's inputs, then ``sets()``."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA1]))
        self.parts: dict = {}

    def _sample(self, a: np.ndarray) -> np.ndarray:
        return a[np.sort(self.rng.choice(len(a), CAL_VECTORS, replace=False))] if len(a) > CAL_VECTORS else a

    def add(self, name: str, xs) -> None:
        self.parts.setdefault(name, []).append(self._sample(np.asarray(xs, np.float64).reshape(-1, xs.shape[-1])))

    def sets(self) -> dict:
        return {k: self._sample(np.concatenate(v)) for k, v in self.parts.items()}


def tile_reads(ir, calibration: str | None, seed: int = 0, inputs: int = CAL_INPUTS) -> dict:
    """Per tile, up to CAL_VECTORS input vectors [vectors, rows]: a seeded sample of its inputs on the
    first ``inputs`` calibration inputs (the float IR evaluated up to the tiles), or seeded uniform
    vectors in [0, 1)."""
    from ..ir.interp import run_ir

    tiles = ir.nodes_of("xbar_tile")
    if calibration is None:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA1]))
        return {t: rng.random((CAL_VECTORS, ir.g.nodes[t]["params"]["gpos"].shape[0])) for t in tiles}
    from ..frontend.common import load_samples

    (inp,) = ir.nodes_of("input")
    x = load_samples(calibration, ir.g.nodes[inp]["shape"], "calibration inputs")[:inputs]
    sampler = ReadSampler(seed)

    def observe(name, xs):
        sampler.add(name, xs)
        p = ir.g.nodes[name]["params"]
        return xs @ (p["gpos"] - p["gneg"])

    run_ir(ir, {inp: x}, tile_fn=observe)
    return sampler.sets()
