"""The chip's integer program: what the digital datapath computes, bit for bit.

The lowered IR is turned into a list of steps over integer feature maps, with every constant the
RTL needs. ``run_program`` is the numpy model of the quantized network; the Verilog datapath is
generated from the same program and must match it exactly.

Arithmetic (Bd = DAC bits, Ba = ADC bits, Dmax = 2^Bd - 1):
- Feature maps feeding crossbars hold DAC codes; a code c stands for c * s, with a scale s per map
  (the input's from --input-range, the others calibrated as the largest activation magnitude seen
  on the calibration inputs over Dmax). A map of non-negative values holds unsigned codes
  0..Dmax (Bd bits); a *signed* map (a normalized input, LeakyReLU, tanh, no activation, a
  residual stream) holds codes -Dmax..Dmax (Bd + 1 bits, two's complement). Signed maps need a PDK
  with bipolar DACs (``dac.bipolar``): the word line of code c is driven to c * V_read / Dmax of
  either sign, and a linear 1R crossbar gives I = V G for both signs in one read.
- A tile computes D_j = sum_i code_i * (lpos_ij - lneg_ij), the integer behind its column current
  I_j = D_j * V_read * G_step / (2^Bd - 1), and its ADC returns
  clamp((D_j * KQ + 2^(SK-1)) >>> SK, -2^(Ba-1), 2^(Ba-1) - 1), with KQ / 2^SK = I per D over the
  layer's LSB: the behavioural ADC model.
- Accumulators add the codes of a layer's row-split tiles (one LSB per layer).
- The requantizer maps an accumulator to the pre-activation zq = (acc * MQ_j + BQ_j) >>> S (bias
  included), and the activation unit (``activation_unit``) to the next map's code: saturation for
  ReLU, Clip or none, a fixed-point slope for LeakyReLU, a 1024-entry table for Sigmoid and Tanh.
  The last layer gives signed 16-bit values (scale in ``output_scale``) to the host.
- Max pooling takes the maximum code of each window (padding never wins). Average pooling (and
  global average pooling, a window over the whole map) sums the window and multiplies by the
  fixed-point reciprocal of its size: (sum * RQ + 2^(S-1)) >>> S.
- A residual add rescales both maps to the output's scale: clamp((a*AQ + b*BQ + 2^(S-1)) >>> S,
  0, 2^Bd - 1).
- A standalone activation (one no layer absorbed) reads a table over every code its source can
  hold.
- A product of two maps (a squeeze-excite scale, a gate) is clamp((x*g*MQ + 2^(S-1)) >>> S, lo,
  2^Bd - 1), the gate broadcast over the value.
- A softmax (or any chain of host nodes) right before the output runs on the host; the chip returns
  the value that enters it (the logits).
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import IR
from ..ir.interp import TABLE_ACTS, value_ranges
from ..ir.kernels import activation
from ..ir.kernels import windows
from ..ir.ops import REGISTRY, row_major
from ..ir.ops.elementwise import gate_broadcast
from ..design.folder import array_file

OUT_BITS = 16
#: bits of a requantizer's scale constant MQ as compiled (signed; CAL_BITS more in its register): the
#: shift is set by the layer's scales alone (:func:`_shift`), so the largest column's MQ keeps at
#: least MQ_BITS - 2 significant bits, a relative error under 2^-(MQ_BITS-2) = 1/16384, which moves
#: an 8-bit output by under 1/64 of a code: 24 bits (to stop 52, when the biases shared the shift)
#: made every requantizer's multiplier and scan register half as wide again for no output code
MQ_BITS = 16
#: the widest bias constant BQ as compiled: a bias that would need more bits at the scales' shift
#: lowers the shift instead
BQ_MAX_BITS = 32
#: headroom bits of a layer's per-column requantizer registers (MQ, BQ: loaded through the scan
#: chain) above what the layer as compiled needs: a chip's calibration may raise a column's scale to
#: at least 2^(CAL_BITS+1) = 32 times the layer's largest as compiled (calibrate.MIN_GAIN = 0.05
#: bounds a live column's correction at 20 times)
CAL_BITS = 4


class RtlUnsupported(Exception):
    """The design uses something the datapath generator cannot build yet (the reason says what)."""


LUT_BITS = 10      # sigmoid/tanh: pre-activation index of 2^10 entries ...
LUT_RANGE = 8.0    # ... spanning [-8, 8), where both functions are within 3.4e-4 of saturation
LEAK_SHIFT = 16


def feature_map(name: str, shape, scale: float, signed: bool, bd: int, final: bool = False) -> dict:
    """A feature-map memory: codes of ``bd`` bits, ``bd + 1`` if signed, OUT_BITS for the output."""
    m = {"name": name, "shape": list(shape), "scale": float(scale), "signed": bool(signed or final),
         "bits": OUT_BITS if final else bd + 1 if signed else bd}
    if final:
        m["final"] = True
    return m


def _need_bipolar(pdk, where: str, fix: str = ", or make it non-negative (ReLU, Sigmoid, Clip with min >= 0)") -> None:
    if not pdk.dac_bipolar:
        raise RtlUnsupported(f"{where} can be negative and feeds the chip on, but PDK '{pdk.name}' drives word lines "
                             f"with unipolar DACs (dac.bipolar: false); compile with a PDK whose DACs are bipolar "
                             f"(generic){fix}")


def activation_unit(act: dict, final: bool, z: np.ndarray, dmax: int, where: str, pdk=None,
                    pre: np.ndarray | None = None) -> dict:
    """The digital activation unit after a layer's accumulators, as integer rules.

    The requantizer first computes the pre-activation in units of ``s_z``; the unit then gives the
    output code (in units of ``s_out``): ``clamp`` saturates to [lo, hi] (ReLU, Clip, no
    activation), ``leaky`` multiplies negative values by a fixed-point slope first, ``lut`` reads
    a table of sigmoid/tanh (over [-8, 8)) or of GELU/HardSwish (over the calibrated pre-activation
    range ``pre``, [min, max]) indexed by the clamped pre-activation. A layer that feeds another layer
    produces DAC codes: unsigned if its activation is non-negative, else signed codes in
    [-Dmax, Dmax] (``signed`` in the result; the PDK must have bipolar DACs). The last layer
    produces signed 16-bit values for the host."""
    kind = act["kind"]
    top = 2 ** (OUT_BITS - 1) - 1
    post = np.asarray(z, dtype=float)
    signed = not final and (kind in ("none", "leaky_relu", "tanh", *TABLE_ACTS)
                            or (kind == "clip" and act["lo"] < 0))
    if signed:
        _need_bipolar(pdk, f"the output of {where} ({kind})")
    if kind in TABLE_ACTS:
        # 2^LUT_BITS entries over [-r, r), r the largest calibrated |pre-activation|: finer than the
        # output codes wherever the function's slope is at most 1 (GELU, HardSwish: about 1 and above)
        half = 2 ** (LUT_BITS - 1)
        r = float(np.max(np.abs(pre))) if pre is not None else 0.0
        s_z = (r or 1.0) / half
        grid = (np.arange(2 ** LUT_BITS) - half) * s_z
        top_code = top if final else dmax
        s_out = (float(np.max(np.abs(post))) or 1.0) / top_code
        lut = np.clip(np.rint(activation(grid, act) / s_out), -top_code, top_code).astype(np.int64)
        return {"s_z": s_z, "s_out": s_out, "signed": signed, "act": {"kind": "lut", "lut": lut, "bits": LUT_BITS}}
    if kind in ("sigmoid", "tanh"):
        s_out = 1.0 / (dmax if not final else top)
        s_z = LUT_RANGE / 2 ** (LUT_BITS - 1)
        fn = (lambda v: 1.0 / (1.0 + np.exp(-v))) if kind == "sigmoid" else np.tanh
        grid = (np.arange(2 ** LUT_BITS) - 2 ** (LUT_BITS - 1)) * s_z
        lut = np.rint(fn(grid) / s_out).astype(np.int64)
        return {"s_z": s_z, "s_out": s_out, "signed": signed, "act": {"kind": "lut", "lut": lut, "bits": LUT_BITS}}
    peak = float(np.max(np.abs(post))) or 1.0
    if final:
        s_out = peak / top
        lo, hi = (0 if kind == "relu" else -top - 1), top
    elif signed:
        s_out = peak / dmax
        lo, hi = -dmax, dmax
    else:
        s_out = (float(np.max(post)) or 1.0) / dmax
        lo, hi = 0, dmax
    if kind == "clip":
        lo = max(lo, int(np.ceil(act["lo"] / s_out - 0.5))) if np.isfinite(act["lo"]) else lo
        hi = min(hi, int(np.floor(act["hi"] / s_out + 0.5))) if np.isfinite(act["hi"]) else hi
    unit = {"kind": "clamp", "lo": int(lo), "hi": int(hi)}
    if kind == "leaky_relu":
        unit = {**unit, "kind": "leaky", "aq": int(round(act["alpha"] * 2 ** LEAK_SHIFT)), "sa": LEAK_SHIFT}
    return {"s_z": s_out, "s_out": s_out, "signed": signed, "act": unit}


def apply_activation_unit(zq: np.ndarray, unit: dict) -> np.ndarray:
    """The unit's integer rule on pre-activations ``zq`` (see :func:`activation_unit`)."""
    if unit["kind"] == "lut":
        half = 2 ** (unit["bits"] - 1)
        return unit["lut"][np.clip(zq, -half, half - 1) + half]
    if unit["kind"] == "leaky":
        zq = np.where(zq < 0, (zq * unit["aq"] + (1 << unit["sa"] >> 1)) >> unit["sa"], zq)
    return np.clip(zq, unit["lo"], unit["hi"])


def _fixed(x: np.ndarray, bits: int) -> int:
    """Shift S such that round(x * 2^S) fits in ``bits`` signed bits (at most 40)."""
    m = float(np.max(np.abs(x))) if np.size(x) else 0.0
    if m == 0:
        return 16
    return max(0, min(40, bits - 1 - math.ceil(math.log2(m)) - 1))


REMAP_MAX = 16384  # elements of a remap whose constants differ along more than one axis (a per-element table)
REMAP_RANK = 6     # axes of a remap's counters (a depth-to-space walks 5, an upsampling 5)


def _vary_axis(c: np.ndarray) -> int:
    """How constant ``c`` (of the padded output shape) varies: -1 not at all, k along axis k only,
    REMAP_RANK along more than one axis."""
    if np.all(c == c.flat[0]):
        return -1
    for k in range(c.ndim):
        idx = [0] * c.ndim
        idx[k] = slice(None)
        if np.all(c == c[tuple(idx)].reshape([c.shape[k] if j == k else 1 for j in range(c.ndim)])):
            return k
    return REMAP_RANK


def _remap_step(ir: IR, n: str, maps: dict, vals: dict, pdk, k: int) -> dict:
    """An operator on the data-movement unit (Transpose, Concat, Slice, Expand, a BatchNormalization
    that was not folded, a constant Mul or Add that no layer absorbed, a ReLU on signed codes), with
    counters.

    The output is produced in row-major order over its shape, padded to REMAP_RANK axes, with
    counters c_0..c_5. The op's registry entry gives its integer kernel (``ir.ops.Remap``): source j
    is the one whose range on the concat axis ``ax`` holds c_ax (the only source, if ``ax`` is -1);
    it is read at ``base_j + sum_k (c_k - off_jk) * stride_jk`` (off_jk: the source's start on the
    concat axis, 0 elsewhere), and the element is clamp((x * a + b) >>> S, lo, Dmax), lo = -Dmax for a
    signed result, else 0, where a and b are the entry's gain and offset in the codes' scales. Per
    source, ``a`` and ``b`` are constants or tables along the axis ``ab_axis`` (a channel's BatchNorm
    scale and shift, a per-channel constant), and only when they vary along more than one axis a table
    per element (at most REMAP_MAX)."""
    d = ir.g.nodes[n]
    op, shape = d["op"], tuple(d["shape"])
    dmax = 2 ** pdk.dac_bits - 1
    size = int(np.prod(shape))
    srcs = [maps[i] for i in ir.inputs(n)]
    if len(shape) > REMAP_RANK:
        raise RtlUnsupported(f"node '{d['origin']}' ({op}) has {len(shape)} axes; the data-movement unit "
                             f"counts over {REMAP_RANK}")
    dims = [1] * (REMAP_RANK - len(shape)) + list(shape)
    kern = REGISTRY[op].remap(d, [tuple(ir.g.nodes[i]["shape"]) for i in ir.inputs(n)], dims)
    if kern.src is not None:
        srcs = [srcs[j] for j in kern.src]
    post = np.asarray(vals[n], dtype=float)
    signed = not kern.keep_scale and (any(m["signed"] for m in srcs) or float(np.min(post)) < 0)
    if signed:
        _need_bipolar(pdk, f"the output of node '{d['origin']}' ({op})")
    if kern.keep_scale:
        s_y = srcs[0]["scale"]
    else:
        s_y = ((float(np.max(np.abs(post))) if signed else float(np.max(post))) or 1.0) / dmax
    s = 16
    one = np.ones(dims)
    strides = [row_major(dims) if st is None else list(st) for st in kern.strides]
    a = [np.rint(one * (m["scale"] * np.asarray(g, float) / s_y * 2 ** s)) for m, g in zip(srcs, kern.gain)]
    b = [np.rint(one * (np.asarray(o, float) / s_y * 2 ** s)) for o in kern.offset]
    # one axis along which every source's a and b vary (the rounding half folds into b)
    b = [x + (1 << s >> 1) for x in b]
    kinds = [_vary_axis(x) for x in a + b]
    varying = sorted({q for q in kinds if q != -1})
    ab_axis = -1 if not varying else varying[0] if len(varying) == 1 else REMAP_RANK
    if ab_axis == REMAP_RANK and size > REMAP_MAX:
        raise RtlUnsupported(f"node '{d['origin']}' ({op}) has {size} elements whose constants vary along more "
                             f"than one axis; the data-movement unit's per-element tables hold {REMAP_MAX}")

    def table(x):
        if ab_axis == -1:
            return [int(x.flat[0])]
        if ab_axis == REMAP_RANK:
            return [int(v) for v in x.ravel()]
        idx = [0] * REMAP_RANK
        idx[ab_axis] = slice(None)
        return [int(v) for v in x[tuple(idx)]]

    dst = feature_map(f"r{k}", shape, s_y, signed, pdk.dac_bits)
    return {"kind": "remap", "op": op, "srcs": srcs, "src": srcs[0], "dst": dst, "s": s, "dims": dims,
            "ax": kern.ax, "offs": list(kern.offs), "base": [int(x) for x in kern.base], "strides": strides,
            "ab_axis": ab_axis,
            "a": [table(x) for x in a], "b": [table(x) for x in b]}


def remap_tables(st: dict) -> tuple[np.ndarray, ...]:
    """A remap step's (source, address, a, b) of every output element, in numpy (see _remap_step)."""
    dims = st["dims"]
    c = np.indices(dims).reshape(REMAP_RANK, -1).astype(np.int64)
    e = np.arange(c.shape[1])
    if st["ax"] >= 0:
        sel = np.searchsorted(np.asarray(st["offs"]), c[st["ax"]], side="right") - 1
    else:
        sel = np.zeros(c.shape[1], np.int64)
    strides = np.asarray(st["strides"], np.int64)          # [sources, REMAP_RANK]
    cc = c.copy()
    if st["ax"] >= 0:
        cc[st["ax"]] -= np.asarray(st["offs"], np.int64)[sel]
    addr = np.einsum("ke,ek->e", cc, strides[sel]) + np.asarray(st.get("base", [0] * len(strides)), np.int64)[sel]
    key = np.zeros_like(e) if st["ab_axis"] == -1 else e if st["ab_axis"] == REMAP_RANK else c[st["ab_axis"]]
    a = np.asarray(st["a"], np.int64)[sel, key]
    b = np.asarray(st["b"], np.int64)[sel, key]
    return sel, addr, a, b


def _host_only(ir: IR, v: str) -> bool:
    """Whether only the host reads value ``v`` (host nodes and the model output, also through reshapes)."""
    homes = ir.g.graph["partition"]["homes"]
    for c in ir.consumers(v):
        op = ir.g.nodes[c]["op"]
        if not (homes.get(c) == "host" or op == "output" or (op == "reshape" and _host_only(ir, c))):
            return False
    return bool(ir.consumers(v))


def _code_map(name: str, shape, post: np.ndarray, bd: int, pdk, where: str) -> dict:
    """A map of DAC codes for calibrated values ``post`` ([min, max]): signed if they can be negative."""
    dmax = 2 ** bd - 1
    signed = float(np.min(post)) < 0
    if signed:
        _need_bipolar(pdk, where)
    return feature_map(name, shape, ((float(np.max(np.abs(post))) if signed else float(np.max(post))) or 1.0) / dmax,
                       signed, bd)


def build_program(ir: IR, pdk, options, calib: np.ndarray, nominal: IR | None = None) -> dict:
    """The integer program of a lowered IR. ``calib``: batch-first calibration inputs; ``nominal``:
    the network as compiled, before one chip's programming (default ``ir``), whose value ranges set
    the feature-map scales, so that the datapath does not depend on which chip it drives.

    The steps follow the partition's segments. A chip segment starts with a ``recv`` of every value
    it reads from the host (the model input first of all: the host holds it), a host segment with a
    ``send`` of every chip value it reads, then a ``host`` step (the segment's ONNX file, which the
    host runs); the chip's last ``send`` is its output. Each ``send``/``recv`` is one stream of the
    chip's host link, numbered by ``tag`` in program order."""
    bd, ba = pdk.dac_bits, pdk.adc_bits
    dmax = 2 ** bd - 1
    inputs, outputs = ir.nodes_of("input"), ir.nodes_of("output")
    if len(inputs) != 1 or len(outputs) != 1:
        raise RtlUnsupported("the datapath generator handles one input and one output")
    lo, hi = options.input_range
    nom = ir if nominal is None else nominal
    vals = value_ranges(nom, {nom.nodes_of("input")[0]: calib})   # node -> [min, max] over the calibration inputs
    del nom
    maps: dict[str, dict] = {}   # IR node -> feature map (see feature_map)
    steps: list[dict] = []
    in_map = feature_map("in", ir.g.nodes[inputs[0]]["shape"], (max(abs(lo), abs(hi)) or 1.0) / dmax, lo < 0, bd)
    sent: set[str] = set()
    tags = iter(range(1 << 30))

    def recv(v: str) -> None:
        if v == inputs[0]:
            if lo < 0:
                _need_bipolar(pdk, f"the input (--input-range {lo:g} {hi:g})")
            maps[v] = in_map
        else:
            maps[v] = _code_map(f"h{len(steps)}", ir.g.nodes[v]["shape"], vals[v], bd, pdk,
                                f"the host's result '{ir.g.nodes[v]['origin']}'")
        steps.append({"kind": "recv", "value": v, "dst": maps[v], "tag": next(tags)})

    def send(v: str) -> None:
        sent.add(v)
        steps.append({"kind": "send", "value": v, "src": maps[v], "tag": next(tags)})

    fused: set[str] = set()   # nodes another step computes already
    for seg in ir.g.graph["partition"]["segments"]:
        if seg["kind"] == "host":
            for v in seg["inputs"]:
                if v in maps and v not in sent:
                    send(v)
            steps.append({"kind": "host", "segment": seg["name"], "file": seg["file"],
                          "inputs": list(seg["inputs"]), "outputs": list(seg["outputs"])})
            continue
        for v in seg["inputs"]:
            if v not in maps:
                recv(v)
        for n in seg["nodes"]:
            _chip_step(ir, n, maps, steps, vals, pdk, fused)
    out_v = ir.inputs(outputs[0])[0]
    if out_v in maps and out_v not in sent:
        send(out_v)
    sends = [st for st in steps if st["kind"] == "send"]
    if not sends:
        raise RtlUnsupported("the chip returns nothing to the host")
    out_map = sends[-1]["src"]
    return {"dac_bits": bd, "adc_bits": ba, "level_bits": max(1, math.ceil(math.log2(pdk.levels))),
            "steps": steps, "input": in_map, "input_value": inputs[0], "output": out_map,
            "output_scale": out_map["scale"], "output_value": out_v, "out_bits": OUT_BITS,
            "host_steps": sum(st["kind"] == "host" for st in steps)}


def _chip_step(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """The step(s) of chip node ``n``, by the datapath unit its registry entry names (``UNITS``): its
    output map goes into ``maps``."""
    d = ir.g.nodes[n]
    if n in fused:
        return
    unit = REGISTRY[d["op"]].unit(d)
    if unit is None:
        what = f"{d['op']} ({d['attrs']['activation']['kind']})" if d["op"] == "act" else d["op"]
        raise RtlUnsupported(f"node '{d['origin']}' ({what}) has no digital unit in the datapath generator yet")
    UNITS[unit](ir, n, maps, steps, vals, pdk, fused)


def _fused_step(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """A tile or im2col: the layer step of its accumulator computes it."""


def _view_step(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """A reshape: the same memory, another view."""
    maps[n] = {**maps[ir.inputs(n)[0]], "shape": list(ir.g.nodes[n]["shape"])}


def _pool_group(ir: IR, n: str, steps: list) -> int:
    """G where max pooling ``n`` is a maximum over groups of G consecutive output columns of the
    layer step just before it, which nothing else reads: the layer's (C * G, P) map read as
    (C, G, P) and pooled by a (G, 1) window of stride (G, 1) (passes/block_conv.py writes a
    convolution and the pooling after it this way), G a power of two; else 0. The layer's stores
    then keep each group's largest code (the pooled map) and the pooling is no step of its own."""
    d = ir.g.nodes[n]
    a = d["attrs"]
    if d["op"] != "pool" or a["kind"] != "max" or not steps or steps[-1]["kind"] != "layer":
        return 0
    lay = steps[-1]
    v = ir.inputs(n)[0]
    chain = [v]
    while ir.g.nodes[chain[-1]]["op"] == "reshape":
        chain.append(ir.inputs(chain[-1])[0])
    if chain[-1] != lay["name"] or any(len(ir.consumers(x)) != 1 for x in chain):
        return 0
    shape = ir.g.nodes[v]["shape"]
    G = a["kernel"][0]
    if not lay["conv"] or lay.get("recur") or lay["final"] or len(shape) != 3 \
            or G < 2 or G & (G - 1) or a["kernel"] != [G, 1] or a["stride"] != [G, 1] or any(a["pads"]) \
            or a["dilation"] != [1, 1] or shape[1] != G or shape[0] * G != lay["cols"] or shape[2] != lay["positions"]:
        return 0
    return G


def _pool_step(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """Max or average pooling (a global average pool is a window over the whole map); a maximum
    over a layer's column groups is the layer's (:func:`_pool_group`)."""
    d = ir.g.nodes[n]
    op, a = d["op"], d["attrs"]
    src = maps[ir.inputs(n)[0]]
    G = _pool_group(ir, n, steps)
    if G:
        lay = steps[-1]
        maps[n] = feature_map(f"m{len(steps) - 1}", d["shape"], src["scale"], src["signed"], pdk.dac_bits)
        # the layer's own output grid stays its positions' (the pooled map's shape is (C, 1, P))
        lay["grid"], lay["dst"], lay["group"] = lay["dst"]["shape"][1:], maps[n], G
        return
    if op == "global_avgpool":
        geo = {"kernel": src["shape"][1:], "stride": [1, 1], "pads": [0, 0, 0, 0], "dilation": [1, 1]}
        kind = "avg"
    else:
        geo = {k: a[k] for k in ("kernel", "stride", "pads", "dilation")}
        kind = a["kind"]
    maps[n] = feature_map(f"m{len(steps)}", d["shape"], src["scale"], src["signed"], pdk.dac_bits)
    st = {"kind": "pool", "pool": kind, "src": src, "dst": maps[n], **geo}
    if kind == "avg":
        # the divisor of each output: the whole window, or only its in-bounds part when
        # padding is excluded from the count (then it varies near the borders)
        c, h, w = src["shape"]
        ones = np.ones((1, 1, h, w))
        if op == "pool" and not a["count_include_pad"]:
            cnt = windows(ones, geo["kernel"], geo["stride"], geo["pads"], geo["dilation"], 0.0).sum(axis=(4, 5))
        else:
            cnt = np.full(windows(ones, geo["kernel"], geo["stride"], geo["pads"], geo["dilation"],
                                  0.0).shape[2:4], geo["kernel"][0] * geo["kernel"][1])
        st["s"] = 24
        st["rq"] = np.tile(np.rint(2 ** 24 / np.asarray(cnt).reshape(-1)).astype(np.int64), c)
    steps.append(st)


def _remap_unit(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """The data-movement unit; a ReLU of codes that are non-negative already changes nothing."""
    d = ir.g.nodes[n]
    if d["op"] == "act" and not maps[ir.inputs(n)[0]]["signed"]:
        maps[n] = maps[ir.inputs(n)[0]]
        return
    if _concat_in_place(ir, n, maps, steps, vals, pdk):
        return
    steps.append(_remap_step(ir, n, maps, vals, pdk, len(steps)))
    maps[n] = steps[-1]["dst"]


def _add_step(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """A residual add: both maps rescaled to the output's scale."""
    d = ir.g.nodes[n]
    dmax = 2 ** pdk.dac_bits - 1
    srcs = [maps[i] for i in ir.inputs(n)]
    cons = ir.consumers(n)
    # a ReLU that alone reads the sum (ResNet's Add -> Relu) is the add's own clamp at 0
    relu_after = (len(cons) == 1 and ir.g.nodes[cons[0]]["op"] == "act"
                  and ir.g.nodes[cons[0]]["attrs"]["activation"]["kind"] == "relu")
    signed = any(m["signed"] for m in srcs) and not relu_after
    if signed:
        _need_bipolar(pdk, f"the residual add '{d['origin']}'")
    s_y = (float(np.max(np.abs(vals[n]) if signed else vals[n])) or 1.0) / dmax
    s = 16
    maps[n] = feature_map(f"a{len(steps)}", d["shape"], s_y, signed, pdk.dac_bits)
    if relu_after:
        maps[cons[0]] = maps[n]
        fused.add(cons[0])
    steps.append({"kind": "add", "src": srcs[0], "src2": srcs[1], "dst": maps[n], "s": s,
                  "aq": int(round(srcs[0]["scale"] / s_y * 2 ** s)),
                  "bq": int(round(srcs[1]["scale"] / s_y * 2 ** s))})


def _layer_step(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """A crossbar layer: its tiles' reads, the ADCs, the accumulator, the requantizer and the
    activation unit."""
    bd = pdk.dac_bits
    d = ir.g.nodes[n]
    a = d["attrs"]
    tiles = ir.inputs(n)
    feed = ir.inputs(tiles[0])[0]
    geo = None
    if ir.g.nodes[feed]["op"] == "im2col":
        geo = {k: ir.g.nodes[feed]["attrs"][k] for k in ("kernel", "stride", "pads", "dilation")}
        feed = ir.inputs(feed)[0]
    src = maps[feed]
    final = _host_only(ir, n)   # read by the host alone: 16-bit results, not DAC codes
    kappa = _kappa(ir.g.nodes[tiles[0]]["attrs"], pdk)
    sk = _fixed(np.array([kappa]), 18)
    if a.get("recurrent"):
        _recurrent_layer(ir, n, maps, steps, pdk, src, tiles, kappa, sk)
        return
    unit, rq = _requantizer(ir, n, src, kappa, vals[n], vals.get((n, "pre")), final, pdk)
    shape = list(d["shape"])
    maps[n] = feature_map(f"l{len(steps)}", shape, unit["s_out"], unit["signed"], bd, final)
    tl = _tile_list(ir, tiles)
    # positions: a convolution's output pixels, or the tokens of a per-token layer ([T, M]: each
    # token reads the same crossbar, its inputs at token * K, its outputs at token * M)
    positions = int(np.prod(shape[1:])) if geo else int(np.prod(shape[:-1]))
    steps.append({"kind": "layer", "name": n, "src": src, "dst": maps[n], "conv": geo, "tiles": tl,
                  "rows": max(t["row1"] for t in tl), "cols": len(rq["mq"]),  # rows: the layer's inputs (K)
                  "positions": positions, "tokens": geo is None and len(shape) > 1,
                  "kq": int(round(kappa * 2 ** sk)), "sk": sk, **rq, "final": final, "acc_bits": a["acc_bits"]})


def _kappa(t0: dict, pdk) -> float:
    """ADC codes per unit of the integer level sum, for a layer whose first tile's attributes are ``t0``."""
    lsb = 2.0 * t0["adc_full_scale_a"] / 2 ** pdk.adc_bits
    return pdk.v_read * pdk.g_step / ((2 ** pdk.dac_bits - 1) * lsb)


def _requantizer(ir: IR, n: str, src: dict, kappa: float, post, pre, final: bool, pdk) -> tuple[dict, dict]:
    """Layer ``n``'s activation unit (:func:`activation_unit`) for its calibrated output range
    ``post`` and its requantizer: per column, ``mq`` and ``bq`` for the shift ``s``, and the
    registers' widths. Returns (unit, step fields)."""
    p = ir.g.nodes[n]["params"]
    w_scale, bias = p["w_scale"], p["b"]
    M = src["scale"] * pdk.g_step * w_scale / kappa
    unit = activation_unit(ir.g.nodes[n]["attrs"]["activation"], final, post, 2 ** pdk.dac_bits - 1,
                           f"layer '{n}'", pdk, pre)
    s_z = unit["s_z"]
    # the shift and the register widths from the layer as compiled: a chip's calibration (w_scale,
    # b of calibrate) changes only the per-column constants the scan chain loads
    m0 = src["scale"] * pdk.g_step * p.get("w_scale_nominal", w_scale) / kappa
    b0 = p.get("b_nominal", bias) / s_z
    s = _shift(m0 / s_z, b0)
    mq = np.rint(M / s_z * 2 ** s).astype(np.int64)
    bq = np.rint(bias / s_z * 2 ** s).astype(np.int64) + (1 << s >> 1)
    mq_bits, bq_bits = _requant_bits(n, s, ((mq, "scale"),), ((bq, "bias"),), b0 * 2.0 ** s)
    return unit, {"mq": mq, "bq": bq, "s": s, "act": unit["act"], "mq_bits": mq_bits, "bq_bits": bq_bits}


def _concat_in_place(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk) -> bool:
    """Concat ``n`` as no step of its own, where every part is the output of a layer step that
    nothing else reads (a SqueezeNet fire module's two expand convolutions): the layers store into
    the concatenation's map, each at its part's first element (``base``), requantized to the
    concatenation's scale (their activation units for its calibrated range, one rounding instead of
    a layer's and the data-movement unit's). The parts must be contiguous in the map (the axes
    before the concat axis of size 1: a feature map's channels, a vector's elements), and the
    layers' activations saturating ones (ReLU, Clip, none, LeakyReLU) of one signedness. The
    layers then write one map, so a pipeline keeps them in one stage (backend/verilog.pipeline_stages).
    Returns whether it did; otherwise the data-movement unit copies the parts (:func:`_remap_step`)."""
    d = ir.g.nodes[n]
    if d["op"] != "concat":
        return False
    ins = ir.inputs(n)
    shape, ax = list(d["shape"]), d["attrs"]["axis"]
    if d["attrs"].get("consts") or len(set(ins)) != len(ins) or any(x != 1 for x in shape[:ax]):
        return False
    layer_of = {id(st["dst"]): st for st in steps if st["kind"] == "layer"}
    lays = [layer_of.get(id(maps[i])) for i in ins]
    if any(st is None or st["name"] != i or st.get("recur") or st.get("group") or st["final"] or "base" in st
           or ir.consumers(i) != [n] or st["act"]["kind"] not in ("clamp", "leaky") for st, i in zip(lays, ins)) \
            or len({st["dst"]["signed"] for st in lays}) != 1:    # a unit's signedness is its activation's
        return False
    # each layer's requantizer again, for the concatenation's range: one scale for every part
    rqs = [_requantizer(ir, st["name"], st["src"], _kappa(ir.g.nodes[st["tiles"][0]["name"]]["attrs"], pdk),
                        vals[n], None, False, pdk) for st in lays]
    first = next(k for k, st in enumerate(steps) if st is lays[0])
    cmap = feature_map(f"c{first}", shape, rqs[0][0]["s_out"], lays[0]["dst"]["signed"], pdk.dac_bits)
    inner, at = int(np.prod(shape[ax + 1:])), 0
    for st, (_, rq), i in zip(lays, rqs, ins):
        own = list(ir.g.nodes[i]["shape"])
        st.update(rq, dst=cmap, base=at * inner)
        if st["conv"]:
            st["grid"] = own[1:]      # the layer's own output positions (the map's shape is the concatenation's)
        at += own[ax]
    maps[n] = cmap
    return True


def _shift(scales: np.ndarray, biases: np.ndarray) -> int:
    """A requantizer's shift S: the largest of the layer's ``scales`` (output codes per accumulator
    unit, as compiled) times 2^S fits MQ_BITS signed bits, unless its ``biases`` (in output codes)
    times 2^S would not fit BQ_MAX_BITS - CAL_BITS: then the largest shift at which they do."""
    return min(_fixed(np.asarray(scales, float), MQ_BITS),
               _fixed(np.concatenate([np.ravel(scales), np.ravel(biases)]).astype(float), BQ_MAX_BITS - CAL_BITS))


def _requant_bits(n: str, s: int, scales, biases, bias0) -> tuple[int, int]:
    """The widths of a layer's per-column requantizer registers (MQ, BQ; a recurrent layer's MQH and
    BQH share them) for its shift ``s``: MQ_BITS, and for BQ its biases as compiled (``bias0``, times
    2^s) and the rounding half, each with CAL_BITS of headroom for a chip's calibration; checks
    that the (calibrated) constants ``scales`` and ``biases`` fit."""
    need = int(np.max(np.abs(np.rint(bias0)))).bit_length() + 1 if np.size(bias0) else 1
    mq_bits, bq_bits = MQ_BITS + CAL_BITS, max(MQ_BITS, s + 1, need) + CAL_BITS
    for group, b in ((scales, mq_bits), (biases, bq_bits)):
        for v, what in group:
            if np.any(np.abs(v) >= 1 << (b - 1)):
                raise RtlUnsupported(f"layer '{n}': a calibrated per-column {what} does not fit the requantizer's "
                                     f"{b}-bit register (a column whose gain is below 1/{1 << (CAL_BITS + 1)} of "
                                     "the layer's largest as compiled)")
    return mq_bits, bq_bits


def _tile_list(ir: IR, tiles: list[str]) -> list[dict]:
    """A layer step's tiles: their slices of the layer's matrix, their own (uint16) level arrays,
    the physical array (``prows`` word lines, ``pcols`` pairs of bit lines) and, on a design for one
    chip, where its placement put each row and column (``wl``: the physical word line of each row,
    ``bl``: the physical pair of each column; the identity without them)."""
    tl = []
    for t in tiles:
        ta = ir.g.nodes[t]["attrs"]
        tp = ir.g.nodes[t]["params"]
        tl.append({"name": t, "row0": ta["row0"], "row1": ta["row1"], "col0": ta["col0"], "col1": ta["col1"],
                   "prows": ta["tile_rows"], "pcols": ta["tile_cols"] // 2,
                   **({"wl": list(ta["placement"]["rows"]), "bl": list(ta["placement"]["cols"])}
                      if "placement" in ta else {}),
                   **({"mac_fraction": ta["mac_fraction"]} if "mac_fraction" in ta else {}),
                   "lpos": tp["lpos"], "lneg": tp["lneg"]})
    return tl


C_FRAC = 10      # an LSTM's cell state: signed 16-bit, in units of 2^-10 (|c| < 32)
C_BITS = 16
CELL_SHIFT = 24  # the cell's products: x * 2^24 / Dmax fixed-point factors


def _recurrent_layer(ir: IR, n: str, maps: dict, steps: list, pdk, src: dict, tiles: list, kappa: float,
                     sk: int) -> None:
    """A recurrent layer (an LSTM or GRU direction, ``ir/ops/recurrent.py``): T reads of its tiles.

    At step t (T - 1 down to 0 for a reverse direction) the DACs take ``[x_t, h_(t-1)]``: the
    sequence's codes (scale s_x) and the previous step's hidden codes (scale 1/Dmax, signed; the
    initial state's codes ``h0`` at the first step). The input rows' and the recurrent rows' tiles
    are accumulated apart, ``ax`` and ``ah``, and each gate column j requantized to the table
    domain of the sigmoid/tanh units (steps of LUT_RANGE / 2^(LUT_BITS-1)):
    ``zq = (ax*MQX_j + ah*MQH_j + BQ_j + BQH_j) >>> S``, then a 1024-entry table gives the gate's
    code (sigmoid: 0..Dmax, tanh: -Dmax..Dmax, both in units of 1/Dmax). A GRU's candidate column
    keeps the two parts apart, ``nx = (ax*MQX + BQ) >>> S``, ``nh = (ah*MQH + BQH) >>> S``, and
    reads tanh at ``nx + ((r * nh * FQ + 2^23) >>> 24)``. With FQ = round(2^24 / Dmax):

    - LSTM: ``c = clamp((f*c*FQ + i*g*IQ + 2^23) >>> 24)`` (16-bit, units 2^-C_FRAC; IQ =
      round(2^(24 + C_FRAC) / Dmax^2)), ``h = clamp((o * tanh_table[(c + 8) >>> 4] * FQ + 2^23) >>> 24)``;
    - GRU: ``h = clamp((((Dmax - u)*n + u*h) * FQ + 2^23) >>> 24)``,

    h clamped to [-Dmax, Dmax] and written to the output map at step t ([T, H], read again as
    h_(t-1) at the next step)."""
    d = ir.g.nodes[n]
    a, p = d["attrs"], d["params"]
    rec = a["recurrent"]
    bd = pdk.dac_bits
    dmax = 2 ** bd - 1
    H, I = rec["hidden"], rec["inputs"]
    T = d["shape"][0]
    _need_bipolar(pdk, f"the hidden state of the recurrent layer '{d['origin']}'",
                  " (the layer's own crossbar reads it back at every step)")
    s_z = LUT_RANGE / 2 ** (LUT_BITS - 1)
    def scale(unit, w):     # a code of the part's inputs (unit: its map's scale) in table steps
        return unit * pdk.g_step * w / kappa / s_z

    mx, mh = scale(src["scale"], p["w_scale"]), scale(1.0 / dmax, p.get("w_scale_h", p["w_scale"]))
    # the shift and the register widths from the layer as compiled: a chip's calibration (w_scale,
    # w_scale_h, b, bh of calibrate) changes only the per-column constants the scan chain loads
    w0 = p.get("w_scale_nominal", p["w_scale"])
    b0 = np.concatenate([p.get("b_nominal", p["b"]) / s_z, p.get("bh_nominal", p["bh"]) / s_z])
    s = _shift(np.concatenate([scale(src["scale"], w0), scale(1.0 / dmax, w0)]), b0)
    half = 1 << s >> 1
    bq = np.rint(p["b"] / s_z * 2 ** s).astype(np.int64) + half
    bqh = np.rint(p["bh"] / s_z * 2 ** s).astype(np.int64)
    if rec["cell"] == "gru":
        bqh[2 * H:] += half   # the candidate's recurrent part is shifted on its own
    mq, mqh = np.rint(mx * 2 ** s).astype(np.int64), np.rint(mh * 2 ** s).astype(np.int64)
    mq_bits, bq_bits = _requant_bits(n, s, ((mq, "scale"), (mqh, "scale")), ((bq, "bias"), (bqh, "bias")), b0 * 2.0 ** s)
    grid = (np.arange(2 ** LUT_BITS) - 2 ** (LUT_BITS - 1)) * s_z
    maps[n] = feature_map(f"l{len(steps)}", d["shape"], 1.0 / dmax, True, bd)
    c_top = 2 ** (C_BITS - 1) - 1
    steps.append({"kind": "layer", "name": n, "src": src, "dst": maps[n], "conv": None, "tiles": _tile_list(ir, tiles),
                  "rows": I + H, "cols": len(p["b"]), "positions": T, "tokens": False,
                  "kq": int(round(kappa * 2 ** sk)), "sk": sk, "s": s, "final": False, "acc_bits": a["acc_bits"],
                  "mq": mq, "bq": bq, "act": {"kind": "clamp", "lo": -dmax, "hi": dmax},
                  "mq_bits": mq_bits, "bq_bits": bq_bits,
                  "recur": {"cell": rec["cell"], "hidden": H, "inputs": I, "reverse": rec["reverse"], "dmax": dmax,
                            "mqh": mqh, "bqh": bqh,
                            "sig": np.rint(1.0 / (1.0 + np.exp(-grid)) * dmax).astype(np.int64),
                            "tanh": np.rint(np.tanh(grid) * dmax).astype(np.int64),
                            "fq": int(round(2 ** CELL_SHIFT / dmax)),
                            "iq": int(round(2 ** (CELL_SHIFT + C_FRAC) / dmax ** 2)),
                            "h0": np.clip(np.rint(p["h0"] * dmax), -dmax, dmax).astype(np.int64),
                            "c0": np.clip(np.rint(p.get("c0", np.zeros(H)) * 2 ** C_FRAC), -c_top, c_top)
                            .astype(np.int64)}})


def run_recurrent(st: dict, x: np.ndarray, tile_codes) -> np.ndarray:
    """A recurrent layer step on input codes ``x`` [N, T * I] (see :func:`_recurrent_layer`):
    ``tile_codes(tile, v)`` gives a tile's clamped ADC codes for DAC codes ``v`` [N, rows]. Returns
    the hidden codes [N, T * H]."""
    r = st["recur"]
    H, I, T = r["hidden"], r["inputs"], st["positions"]
    n = x.shape[0]
    lut_half = 2 ** (LUT_BITS - 1)
    dmax = r["dmax"]
    sh, half = st["s"], 1 << st["s"] >> 1
    cs, chalf = CELL_SHIFT, 1 << CELL_SHIFT >> 1
    c_top = 2 ** (C_BITS - 1) - 1
    mq, mqh, bq, bqh = (np.asarray(v, np.int64) for v in (st["mq"], r["mqh"], st["bq"], r["bqh"]))
    sig, tanh = np.asarray(r["sig"], np.int64), np.asarray(r["tanh"], np.int64)

    def table(lut, z):
        return lut[np.clip(z, -lut_half, lut_half - 1) + lut_half]

    xs = x.reshape(n, T, I)
    h = np.broadcast_to(np.asarray(r["h0"], np.int64), (n, H)).copy()
    c = np.broadcast_to(np.asarray(r["c0"], np.int64), (n, H)).copy()
    y = np.zeros((n, T, H), np.int64)
    for t in (range(T - 1, -1, -1) if r["reverse"] else range(T)):
        v = np.concatenate([xs[:, t], h], axis=1)
        acc = [np.zeros((n, st["cols"]), np.int64), np.zeros((n, st["cols"]), np.int64)]
        for tl in st["tiles"]:
            acc[int(tl["row0"] >= I)][:, tl["col0"]:tl["col1"]] += tile_codes(tl, v[:, tl["row0"]:tl["row1"]])
        ax, ah = acc
        z = (ax * mq + ah * mqh + bq + bqh) >> sh
        if r["cell"] == "lstm":
            i, o, f = table(sig, z[:, :H]), table(sig, z[:, H:2 * H]), table(sig, z[:, 2 * H:3 * H])
            g = table(tanh, z[:, 3 * H:])
            c = np.clip((f * c * r["fq"] + i * g * r["iq"] + chalf) >> cs, -c_top, c_top)
            th = table(tanh, (c + (1 << (C_FRAC - 7))) >> (C_FRAC - 6))
            h = np.clip((o * th * r["fq"] + chalf) >> cs, -dmax, dmax)
        else:
            u, rr = table(sig, z[:, :H]), table(sig, z[:, H:2 * H])
            nx = (ax[:, 2 * H:] * mq[2 * H:] + bq[2 * H:]) >> sh
            nh = (ah[:, 2 * H:] * mqh[2 * H:] + bqh[2 * H:]) >> sh
            nn = table(tanh, nx + ((rr * nh * r["fq"] + chalf) >> cs))
            h = np.clip((((dmax - u) * nn + u * h) * r["fq"] + chalf) >> cs, -dmax, dmax)
        y[:, t] = h
    return y.reshape(n, -1)


def _mul_step(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """A product of two runtime maps, the gate broadcast over the value (``ir.ops.elementwise.
    gate_broadcast``: element i reads gate element (i // div) % mod): clamp((x * g * MQ + 2^(S-1))
    >>> S, lo, Dmax), MQ / 2^S the product's scale over the output's."""
    d = ir.g.nodes[n]
    dmax = 2 ** pdk.dac_bits - 1
    x, g = (maps[i] for i in ir.inputs(n))
    signed = x["signed"] or g["signed"]
    if signed:
        _need_bipolar(pdk, f"the product '{d['origin']}'")
    s_y = (float(np.max(np.abs(vals[n]))) or 1.0) / dmax
    m = x["scale"] * g["scale"] / s_y
    s = _fixed(np.array([m]), MQ_BITS)
    div, mod = gate_broadcast(tuple(x["shape"]), tuple(g["shape"]))
    maps[n] = feature_map(f"p{len(steps)}", d["shape"], s_y, signed, pdk.dac_bits)
    steps.append({"kind": "mul", "src": x, "src2": g, "dst": maps[n], "s": s, "mq": int(round(m * 2 ** s)),
                  "div": div, "mod": mod})


def _lut_step(ir: IR, n: str, maps: dict, steps: list, vals: dict, pdk, fused: set) -> None:
    """A standalone activation other than ReLU (one no layer absorbed): a table over every code the
    source map can hold, y = clamp(round(act(code * s_x) / s_y)); signed if the function is negative
    anywhere on those codes."""
    d = ir.g.nodes[n]
    act = d["attrs"]["activation"]
    bd = pdk.dac_bits
    dmax = 2 ** bd - 1
    src = maps[ir.inputs(n)[0]]
    lo = code_min(src, bd)
    y = activation(np.arange(lo, dmax + 1) * src["scale"], act)
    signed = float(np.min(y)) < 0
    if signed:
        _need_bipolar(pdk, f"the output of node '{d['origin']}' ({act['kind']})")
    post = np.asarray(vals[n], dtype=float)
    s_y = ((float(np.max(np.abs(post))) if signed else float(np.max(post))) or 1.0) / dmax
    maps[n] = feature_map(f"t{len(steps)}", d["shape"], s_y, signed, bd)
    table = np.clip(np.rint(y / s_y), -dmax if signed else 0, dmax).astype(np.int64)
    steps.append({"kind": "lut", "act": act["kind"], "src": src, "dst": maps[n], "lo": lo, "table": table})


#: The datapath's units, by the name an operator's registry entry gives (``ir.ops.OpDef.unit``): each
#: lowers a node to its program step(s). The RTL of a step kind is in ``pdk_templates/*/top.v.j2``, its
#: PPA cost in ``eval/ppa.py:digital_ops``.
UNITS = {"fused": _fused_step, "view": _view_step, "pool": _pool_step, "remap": _remap_unit, "add": _add_step,
         "mul": _mul_step, "lut": _lut_step, "layer": _layer_step}


def input_codes(prog: dict, x: np.ndarray) -> np.ndarray:
    """Host-side DAC coding of model inputs (batch-first floats) into the input map's codes."""
    dmax = 2 ** prog["dac_bits"] - 1
    lo = -dmax if prog["input"]["signed"] else 0
    return np.clip(np.rint(np.asarray(x, float) / prog["input"]["scale"]), lo, dmax).astype(np.int64)


def _patches(x: np.ndarray, shape, geo) -> np.ndarray:
    """[N, P, K] integer patches of an integer (C, H, W) map; zero where the window is padding."""
    from ..ir.kernels import im2col

    return np.rint(im2col(x.reshape((-1, *shape)).astype(float), geo["kernel"], geo["stride"], geo["pads"],
                          geo["dilation"])).astype(np.int64)


def code_min(m: dict, bd: int) -> int:
    """The smallest code of an intermediate map: -Dmax if signed, else 0."""
    return -(2 ** bd - 1) if m["signed"] else 0


def host_codes(m: dict, v: np.ndarray, bd: int) -> np.ndarray:
    """A host-side value (batch first, floats) coded into map ``m``'s codes, as the host streams it in."""
    return np.clip(np.rint(np.asarray(v, float).reshape(v.shape[0], -1) / m["scale"]),
                   code_min(m, bd), 2 ** bd - 1).astype(np.int64)


def _tile_codes(st: dict, t: dict, xt: np.ndarray, tile_fn, ba: int) -> np.ndarray:
    """Tile ``t``'s ADC codes for DAC codes ``xt`` [vectors, rows]: the integer rule, or the ADC's
    rounding of ``tile_fn``'s (analog) level sums; clamped to the ADC's range."""
    if tile_fn is None:
        D = xt @ (t["lpos"].astype(np.int64) - t["lneg"])  # the level difference of each pair
        code = (D * st["kq"] + (1 << st["sk"] >> 1)) >> st["sk"]
    else:
        D = tile_fn(t["name"], xt)
        code = np.floor(D * (st["kq"] / 2.0 ** st["sk"]) + 0.5).astype(np.int64)
    return np.clip(code, -(2 ** (ba - 1)), 2 ** (ba - 1) - 1)


def run_program(prog: dict, codes: np.ndarray, tile_fn=None, host=None, streams: list | None = None,
                trace: dict | None = None) -> np.ndarray:
    """The bit-exact model: input codes [N, *shape] -> the chip's output stream, signed integers [N, outputs].

    ``tile_fn(tile, x)``, if given, replaces a tile's integer level sum ``D = x @ (lpos - lneg)``
    (``x``: DAC codes [vectors, rows]) by an analog one, for example ``D`` measured from a circuit
    simulation's column currents. The ADC then rounds ``D * KQ / 2^SK`` to the nearest code, which
    for an integer ``D`` is exactly the integer rule below.

    ``host`` runs the host side of a program with host segments (without one, host steps are skipped
    and a ``recv`` of a host result is an error): ``host.values`` (IR value -> batch-first
    floats, holding the model input) receives every ``send`` (codes times the map's scale), and
    ``host(step)`` runs a ``host`` step on it; a ``recv`` codes ``host.values[value]``. ``streams``, if
    given, collects every stream of the host link in order as ``(direction, codes [N, size])``,
    direction ``"in"`` (host to chip) or ``"out"`` (what the RTL must send). ``trace``, if given,
    receives each layer's output as ``{layer: (codes [N, size], scale)}``."""
    ba, bd = prog["adc_bits"], prog["dac_bits"]
    mem: dict[str, np.ndarray] = {}
    n = codes.shape[0]
    last = None
    for st in prog["steps"]:
        if st["kind"] == "recv":
            if st["value"] == prog["input_value"]:
                mem[st["dst"]["name"]] = codes.reshape(n, -1).astype(np.int64)
            elif host is None:
                raise ValueError(f"the program receives '{st['value']}' from the host; pass host")
            else:
                mem[st["dst"]["name"]] = host_codes(st["dst"], host.values[st["value"]], bd)
            if streams is not None:
                streams.append(("in", mem[st["dst"]["name"]]))
            continue
        if st["kind"] == "send":
            last = mem[st["src"]["name"]]
            if streams is not None:
                streams.append(("out", last))
            if host is not None:
                host.values[st["value"]] = (last * st["src"]["scale"]).reshape([n] + st["src"]["shape"])
            continue
        if st["kind"] == "host":
            if host is not None:   # without a host, the program runs until it needs a host's result
                host(st)
            continue
        src = mem[st["src"]["name"]]
        if st["kind"] == "pool":
            c, h, w = st["src"]["shape"]
            x = src.reshape(n, c, h, w).astype(float)
            # max: padding is the smallest code (0, or -Dmax for a signed map), so it never wins
            win = windows(x, st["kernel"], st["stride"], st["pads"], st["dilation"],
                          float(code_min(st["src"], bd)) if st["pool"] == "max" else 0.0)
            if st["pool"] == "max":
                y = np.rint(win.max(axis=(4, 5))).astype(np.int64)
            else:
                sums = np.rint(win.sum(axis=(4, 5))).astype(np.int64).reshape(n, -1)
                y = (sums * st["rq"] + (1 << st["s"] >> 1)) >> st["s"]
            mem[st["dst"]["name"]] = y.reshape(n, -1)
            continue
        if st["kind"] == "remap":
            sel, addr, a, b = remap_tables(st)
            picked = np.empty((n, sel.size), np.int64)
            for j, m in enumerate(st["srcs"]):
                mask = sel == j
                picked[:, mask] = mem[m["name"]][:, addr[mask]]
            mem[st["dst"]["name"]] = np.clip((picked * a + b) >> st["s"], code_min(st["dst"], bd), 2 ** bd - 1)
            continue
        if st["kind"] == "lut":
            mem[st["dst"]["name"]] = np.asarray(st["table"], np.int64)[src - st["lo"]]
            continue
        if st["kind"] == "mul":
            gate = mem[st["src2"]["name"]][:, (np.arange(src.shape[1]) // st["div"]) % st["mod"]]
            y = (src * gate * st["mq"] + (1 << st["s"] >> 1)) >> st["s"]
            mem[st["dst"]["name"]] = np.clip(y, code_min(st["dst"], bd), 2 ** bd - 1)
            continue
        if st["kind"] == "add":
            y = (src * st["aq"] + mem[st["src2"]["name"]] * st["bq"] + (1 << st["s"] >> 1)) >> st["s"]
            mem[st["dst"]["name"]] = np.clip(y, code_min(st["dst"], bd), 2 ** bd - 1)
            continue
        if st.get("recur"):
            mem[st["dst"]["name"]] = run_recurrent(st, src, lambda t, v: _tile_codes(st, t, v, tile_fn, ba))
            if trace is not None:
                trace[st["name"]] = (mem[st["dst"]["name"]], st["dst"]["scale"])
            continue
        if st["conv"]:
            x = _patches(src, st["src"]["shape"], st["conv"])
        else:   # one position, or one per token: [N, T, K]
            x = src.reshape(n, st["positions"], st["rows"])
        acc = np.zeros((n, x.shape[1], st["cols"]), dtype=np.int64)
        for t in st["tiles"]:
            xt = x[:, :, t["row0"]:t["row1"]]
            acc[:, :, t["col0"]:t["col1"]] += _tile_codes(st, t, xt.reshape(-1, xt.shape[-1]), tile_fn,
                                                          ba).reshape(xt.shape[:2] + (-1,))
        y = apply_activation_unit((acc * st["mq"] + st["bq"]) >> st["s"], st["act"])
        # a convolution's map is (C_out, positions); a per-token layer's (tokens, C_out)
        y = y.transpose(0, 2, 1) if st["conv"] else y
        if st.get("group"):   # the largest code of each group of columns (a pooling, _pool_group)
            y = y.reshape(n, -1, st["group"], y.shape[-1]).max(axis=2)
        y = y.reshape(n, -1)
        if "base" in st:      # its part of a concatenation's map (_concat_in_place)
            whole = mem.get(st["dst"]["name"])
            if whole is None:
                whole = mem[st["dst"]["name"]] = np.zeros((n, int(np.prod(st["dst"]["shape"]))), np.int64)
            whole[:, st["base"]:st["base"] + y.shape[1]] = y
        else:
            mem[st["dst"]["name"]] = y
        if trace is not None:
            trace[st["name"]] = (y, st["dst"]["scale"])
    return last


def program_json(prog: dict) -> str:
    """The program as canonical JSON (arrays as lists), for ``amsc rtl-sim`` and ``amsc run``. A
    tile's levels are not repeated here: they are ``tiles/<tile>_{lpos,lneg}.npy`` of the same
    output folder (ResNet-50's would be 51 M numbers of JSON)."""
    from ..design.writer import json_text

    prog = {**prog, "steps": [{**st, "tiles": [{k: v for k, v in t.items() if k not in ("lpos", "lneg")}
                                               for t in st["tiles"]]} if st["kind"] == "layer" else st
                              for st in prog["steps"]]}

    def conv(x):
        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        if isinstance(x, list):
            return [conv(v) for v in x]
        if isinstance(x, (np.integer,)):
            return int(x)
        return x

    return json_text(conv(prog))


def load_program(out) -> dict:
    """The program of the compiled design in folder ``out`` (inverse of :func:`program_json`, with
    each tile's levels read back from ``tiles/``)."""
    from pathlib import Path

    from ..design import confined, load_json

    out = Path(out)
    path = out / "rtl" / "program.json"
    prog = load_json(path, "integer program")
    for st in prog["steps"]:
        if st["kind"] == "pool" and "rq" in st:
            st["rq"] = np.array(st["rq"], np.int64)
        if st["kind"] == "layer":
            st["mq"], st["bq"] = np.array(st["mq"], np.int64), np.array(st["bq"], np.int64)
            if st["act"]["kind"] == "lut":
                st["act"]["lut"] = np.array(st["act"]["lut"], np.int64)
            for t in st["tiles"]:
                for k in ("lpos", "lneg"):
                    t[k] = np.load(confined(out, array_file(t["name"], "xbar_tile", k), path, "tile levels"),
                                   allow_pickle=False)
    return prog
