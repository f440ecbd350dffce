"""partition: give every node its home (crossbar, digital or host) and cut the graph into segments.

Homes come from the operator registry (``ir/ops``): crossbar tiles are ``crossbar``; ``host`` nodes
(ONNX operators with no lowering) and ``softmax`` are ``host``; everything else the chip's digital
side computes is ``digital``. A
*segment* is a run of nodes that execute in one place: ``chip`` segments hold crossbar and digital
nodes, ``host`` segments host nodes. Segments are listed in execution order, and every value a
segment reads comes from the model input or an earlier segment.

The order is a topological order that stays in the current segment's kind as long as one of its
nodes is ready (lexicographic among those), and switches only when none is. That keeps the number
of chip <-> host crossings low without any search. The result is recorded in
``ir.g.graph["partition"]``; the pass changes no node.

A digital node that can run on either side (a constant Mul or Add, a Transpose, a Reshape: see
``SWING_OPS``) goes with the host when it reads only host results and only host nodes read it, as
the scaling between an attention's score MatMul and its Softmax does: on the chip it would cost a
stream out and a stream back for one multiply per element. Its host segment computes it as the ONNX
operator it came from.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..ir import IR
from ..ir.graph import SWING_OPS
from ..ir.ops import REGISTRY

_IO = ("input", "output")


def home(op: str) -> str:
    """Where an op runs (its registry entry's home)."""
    return REGISTRY[op].home


def _side(op: str) -> str:
    return "host" if home(op) == "host" else "chip"


def _batch_first_on_host(ir: IR, v: str, side: dict) -> bool:
    """Whether value ``v`` is on the host with its batch on axis 0 (as a swung node needs it)."""
    d = ir.g.nodes[v]
    if side.get(v) != "host":
        return False
    return d["op"] in SWING_OPS or d["op"] == "softmax" or d["attrs"].get("out_axis") == 0


def _swing_to_host(ir: IR, side: dict) -> None:
    """Move SWING_OPS nodes between host nodes to the host, until none moves."""
    g = ir.g
    moved = True
    while moved:
        moved = False
        for n in sorted(side):
            if side[n] == "host" or g.nodes[n]["op"] not in SWING_OPS:
                continue
            cons = list(g.successors(n))
            if cons and all(side.get(c) == "host" for c in cons) and \
                    all(_batch_first_on_host(ir, p, side) for p in g.predecessors(n)):
                side[n] = "host"
                moved = True


def host_macs(ir: IR, n: str) -> int:
    """Multiply-accumulates of a host node: matrix products and convolutions; 0 for the others."""
    d = ir.g.nodes[n]
    if d["op"] != "host":
        return 0
    out = int(np.prod(d["shape"]))
    ins = [ir.g.nodes[i]["shape"] for i in ir.inputs(n)]
    t = d["attrs"]["op_type"]
    consts = [d["params"][o[1]] for o in d["attrs"]["operands"] if o[0] == "c"]
    if t in ("MatMul", "Gemm", "MatMulInteger", "Einsum"):
        k = ins[0][-1] if ins and ins[0] else 1
        return out * int(k)
    if t in ("LSTM", "GRU", "RNN") and len(consts) >= 2:
        # every time step multiplies the input by W and the state by R (all gates and directions)
        w, r = consts[0], consts[1]
        steps = int(np.prod(ins[0])) // max(1, int(w.shape[-1])) if ins else 1
        return steps * int(w.size + r.size)
    if t in ("Conv", "ConvTranspose") and consts:
        w = consts[0]
        return out * int(np.prod(w.shape[1:]))
    return 0


def crossbar_macs(ir: IR, n: str) -> int:
    d = ir.g.nodes[n]
    if d["op"] != "xbar_tile":
        return 0
    a = d["attrs"]
    blocks = a.get("blocks") or [[a["row0"], a["row1"], a["col0"], a["col1"]]]
    cells = sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in blocks)
    # a blocked convolution's structural zeros are no operations (passes/block_conv.py)
    return int(round(int(np.prod(d["shape"][:-1], dtype=np.int64)) * cells * a.get("mac_fraction", 1.0)))


def partition(ir: IR, options=None, pdk=None) -> IR:
    ir = ir.copy()
    g = ir.g
    work = [n for n in g.nodes if g.nodes[n]["op"] not in _IO]
    side = {n: _side(g.nodes[n]["op"]) for n in work}
    _swing_to_host(ir, side)
    missing = {n: sum(1 for p in g.predecessors(n) if p in side) for n in work}
    ready = {"chip": [], "host": []}
    for n in work:
        if missing[n] == 0:
            heapq.heappush(ready[side[n]], n)
    segments: list[dict] = []
    cur = None
    while ready["chip"] or ready["host"]:
        if cur is None or not ready[cur]:
            heads = [(ready[k][0], k) for k in ("chip", "host") if ready[k]]
            cur = min(heads)[1]
            segments.append({"kind": cur, "nodes": []})
        n = heapq.heappop(ready[cur])
        segments[-1]["nodes"].append(n)
        for s in g.successors(n):
            if s in missing:
                missing[s] -= 1
                if missing[s] == 0:
                    heapq.heappush(ready[side[s]], s)
    seg_of = {}
    for k, seg in enumerate(segments):
        seg["name"] = f"seg{k}"
        for n in seg["nodes"]:
            seg_of[n] = k
    for k, seg in enumerate(segments):
        members = set(seg["nodes"])
        seg["inputs"] = sorted({p for n in seg["nodes"] for p in g.predecessors(n) if p not in members})
        seg["outputs"] = sorted({n for n in seg["nodes"]
                                 if any(s not in members for s in g.successors(n))})
        seg["macs_crossbar"] = sum(crossbar_macs(ir, n) for n in seg["nodes"])
        seg["macs_host"] = sum(host_macs(ir, n) for n in seg["nodes"])
        if seg["kind"] == "host":
            seg["file"] = f"host/{seg['name']}.onnx"
            # a host node of a model defined at batch 1 only: the segment runs one sample at a time
            if any(g.nodes[n]["attrs"].get("per_sample") for n in seg["nodes"] if g.nodes[n]["op"] == "host"):
                seg["per_sample"] = True
    g.graph["partition"] = {
        "segments": segments,
        "homes": {n: "host" if side[n] == "host" else home(g.nodes[n]["op"]) for n in sorted(work)},
    }
    return ir
