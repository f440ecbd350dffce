"""program: the conductances each tile's devices actually get when they are programmed.

For a PDK with a programming-error model (an RRAM gap sigma), every device's conductance is drawn
around its target level from a generator seeded by ``--seed`` and the tile's position in the
schedule, so a seed gives one chip. The netlists and the verifier's golden model both use these
programmed values; the level indices (``lpos``/``lneg``) keep the targets. PDKs without such a
model program exactly, and the pass changes nothing.
"""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ..pdk.devices import program as program_devices


def program(ir: IR, options, pdk) -> IR:
    if pdk.cell["type"] != "1t1r" or pdk.cell["rram"]["sigma_gap_nm"] == 0:
        return ir
    ir = ir.copy()
    for k, t in enumerate(ir.nodes_of("xbar_tile")):
        p = ir.g.nodes[t]["params"]
        rng = np.random.default_rng(np.random.SeedSequence([options.seed, k]))
        ir.set(t, params={**p, "gpos": program_devices(p["gpos"], pdk.cell["rram"], rng),
                          "gneg": program_devices(p["gneg"], pdk.cell["rram"], rng)})
    return ir
