"""quantize: signed weights -> differential conductance pairs on the PDK's level grid.

``w_max = max|W|``, per layer or (``--weight-scale column``) per output column, maps to the full
conductance swing ``G_max - G_min``. A weight ``w`` becomes ``G+ - G- = w (G_max - G_min) / w_max``
with the unused side of the pair at ``G_min``, and each conductance is rounded to one of ``levels``
evenly spaced values in ``[G_min, G_max]``. The rounding error per weight is at most half a level
step, ``w_max / (2 (levels - 1))``; per-column scaling makes that step smaller for columns whose
weights are small. The digital side multiplies each column's result by ``w_scale = w_max / swing``.
"""

from __future__ import annotations

import numpy as np

from ..ir import IR
from ..ir.graph import MATMUL_OPS


def quantize_matrix(W: np.ndarray, pdk, per_column: bool = False) -> dict:
    """Quantize a ``[out, in]`` weight matrix; returns arrays in crossbar orientation ``[in, out]``."""
    if per_column:
        w_max = np.max(np.abs(W), axis=1) if W.size else np.zeros(W.shape[0])
    else:
        w_max = np.full(W.shape[0], float(np.max(np.abs(W))) if W.size else 0.0)
    w_max = np.where(w_max > 0, w_max, 1.0)
    swing = pdk.g_max - pdk.g_min
    dg = W.T / w_max * swing
    lpos = np.rint(np.maximum(dg, 0.0) / pdk.g_step).astype(np.int64)
    lneg = np.rint(np.maximum(-dg, 0.0) / pdk.g_step).astype(np.int64)
    lpos = np.clip(lpos, 0, pdk.levels - 1).astype(np.uint16)
    lneg = np.clip(lneg, 0, pdk.levels - 1).astype(np.uint16)
    return {
        "lpos": lpos,
        "lneg": lneg,
        "gpos": pdk.g_min + lpos.astype(np.float64) * pdk.g_step,
        "gneg": pdk.g_min + lneg.astype(np.float64) * pdk.g_step,
        "w_scale": w_max / swing,
    }


def quantize(ir: IR, options, pdk) -> IR:
    ir = ir.copy()
    for n in [n for n in ir.topo() if ir.g.nodes[n]["op"] in MATMUL_OPS]:
        d = ir.g.nodes[n]
        W = d["params"]["W"]
        per_column = options.weight_scale == "column"
        q = quantize_matrix(W.reshape(W.shape[0], -1), pdk, per_column)  # a convolution as its im2col matrix
        ir.set(n, params={**d["params"], **{k: q[k] for k in ("gpos", "gneg", "lpos", "lneg", "w_scale")}},
               attrs={**d["attrs"], "weight_scale": options.weight_scale, "levels": pdk.levels})
    return ir
