"""program: the conductances each tile's devices actually get when they are programmed.

For a PDK with a programming-error model (an RRAM gap sigma), every device's conductance is drawn
around its target level from a generator seeded by ``--seed`` and the tile's position in the
schedule, so a seed gives one chip. The netlists and the verifier's golden model both use these
programmed values; the level indices (``lpos``/``lneg``) keep the targets. PDKs without such a
model program exactly, and the pass changes nothing. A chip's stuck cells (``stuck``, from
``fault_map``) keep the conductance the chip's test measured.
"""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ..pdk.devices import program as program_devices


def draws_error(pdk) -> bool:
    """Whether the PDK models a programming error, so that programmed tiles leave their target levels."""
    return pdk.cell["type"] == "1t1r" and pdk.cell["rram"]["sigma_gap_nm"] != 0


def program(ir: IR, options, pdk) -> IR:
    if not draws_error(pdk):
        return ir
    ir = ir.copy()
    for k, t in enumerate(ir.nodes_of("xbar_tile")):
        p = ir.g.nodes[t]["params"]
        rng = np.random.default_rng(np.random.SeedSequence([options.seed, k]))
        gpos, gneg = program_devices(p["gpos"], pdk.cell["rram"], rng), program_devices(p["gneg"], pdk.cell["rram"], rng)
        if "stuck" in p:     # a chip's stuck cells (fault_map) read what they are stuck at
            gpos, gneg = np.where(p["stuck"][0] != 0, p["gpos"], gpos), np.where(p["stuck"][1] != 0, p["gneg"], gneg)
        ir.set(t, params={**p, "gpos": gpos, "gneg": gneg})
    return ir
