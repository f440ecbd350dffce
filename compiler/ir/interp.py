"""Reference interpreter of the IR in numpy (float64), batch-first.

Used as the golden model of the *network* (front ends are checked against onnxruntime with it, and
the lowered IR against the float IR); the golden model of a *tile* is in ``compiler.verify.golden``.
"""

from __future__ import annotations

import numpy as np

from .graph import IR


def _act(y: np.ndarray, activation: str) -> np.ndarray:
    return np.maximum(y, 0.0) if activation == "relu" else y


def run_ir(ir: IR, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate ``ir`` on batch-first inputs ``{input node: [N, *shape]}``; returns outputs likewise."""
    vals: dict[str, np.ndarray] = {}
    outs: dict[str, np.ndarray] = {}
    for n in ir.topo():
        d = ir.g.nodes[n]
        op, a, p = d["op"], d["attrs"], d["params"]
        xs = [vals[i] for i in ir.inputs(n)]
        batch = xs[0].shape[0] if xs else None
        if op == "input":
            y = np.asarray(feeds[n], dtype=np.float64)
            batch = y.shape[0]
        elif op in ("identity", "output"):
            y = xs[0]
        elif op == "relu":
            y = np.maximum(xs[0], 0.0)
        elif op == "reshape":
            y = xs[0].reshape((batch,) + d["shape"])
        elif op == "add_const":
            y = xs[0] + p["c"]
        elif op == "dense":
            # after `quantize`, a dense layer computes with its quantized conductances
            W = (p["gpos"] - p["gneg"]).T * a["w_per_siemens"] if "gpos" in p else p["W"]
            y = _act(xs[0] @ W.T + p["b"], a["activation"])
        elif op == "xbar_tile":
            y = xs[0][:, a["row0"]:a["row1"]] @ (p["gpos"] - p["gneg"])
        elif op == "accum":
            rs, cs = a["row_splits"], a["col_splits"]
            cols = [sum(xs[r * cs + c] for r in range(rs)) for c in range(cs)]
            y = _act(np.concatenate(cols, axis=1) * a["w_per_siemens"] + p["b"], a["activation"])
        else:  # pragma: no cover - the verifier rejects unknown ops first
            raise ValueError(f"interpreter has no rule for op {op!r}")
        vals[n] = y
        if op == "output":
            outs[n] = y
    return outs
