"""The IR operator registry: every IR operator is defined here, once.

An entry (:class:`OpDef`) holds all that the compiler needs to know about one operator:

``arity``, ``attrs``, ``params``
    the number of operands (None: one or more), the required attributes and parameters;
``check(ir, n, d, ins)``
    its shape rule and verifier (``ins``: the operands' per-sample shapes); it calls :func:`fail`;
``eval(d, xs, **kw)``
    its float kernel on batch-first float64 operands (the golden model, ``ir/interp.py``);
``home``
    where it runs: ``"crossbar"``, ``"digital"`` (the chip's datapath) or ``"host"`` (onnxruntime);
``unit(d)``
    the datapath unit that computes it on the chip (``backend/qmodel.py``: ``UNITS``), or None when
    the datapath has none for it (the design then has no chip RTL, and the message says why). A
    unit owns its integer kernel, its RTL (``pdk_templates/*/top.v.j2``) and its PPA cost
    (``eval/ppa.py:digital_ops``), so an operator that a unit already computes needs no template;
``remap(d, ins, dims)``
    for an operator on the data-movement unit (``unit == "remap"``), its integer kernel: the
    addresses each output element reads and the affine map applied to it (see :class:`Remap`);
``swing``
    a digital operator that a host segment may compute too (the partition moves one between host
    nodes to the host), with ``to_onnx`` giving the ONNX node(s) it becomes there.

The families live in this package's modules (``io``, ``shape``, ``elementwise``, ``window``,
``matmul``, ``recurrent``, ``offload``); ``docs/operators.md`` walks through adding an operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...errors import IRVerifyError

HOMES = ("crossbar", "digital", "host")


def fail(ir, node: str | None, what: str):
    """Raise the verifier's error for ``node`` of ``ir``."""
    where = f"{ir.source or ir.name}" + (f": node '{node}'" if node else "")
    raise IRVerifyError(where, what)


@dataclass
class Remap:
    """The integer kernel of an operator on the data-movement unit, in real units.

    The unit walks the output in row-major order over ``dims`` (the output shape padded in front to
    the unit's rank). Output element ``c`` reads source ``j`` (the one whose start on axis ``ax``
    in ``offs`` is the last at or below ``c[ax]``; the only source when ``ax`` is -1) at address
    ``base[j] + sum_k (c_k - offs[j] if k == ax else c_k) * strides[j][k]``, and computes
    ``gain[j] * x + offset[j]`` (arrays broadcastable to ``dims``, or scalars); ``src[j]`` is the
    operand source j reads (a constant part reads operand 0 with a gain of 0). With
    ``keep_scale`` the output keeps the source's scale and is unsigned (a ReLU of signed codes)."""
    strides: list
    gain: list
    offset: list
    ax: int = -1
    offs: list = field(default_factory=lambda: [0])
    base: list = field(default_factory=lambda: [0])
    keep_scale: bool = False
    src: list | None = None   # the operand each source reads (default: source j reads operand j)


@dataclass(frozen=True)
class OpDef:
    name: str
    arity: int | None
    attrs: tuple[str, ...]
    params: tuple[str, ...]
    home: str
    check: Callable
    eval: Callable
    unit: Callable = lambda d: None
    remap: Callable | None = None
    swing: bool = False
    to_onnx: Callable | None = None
    doc: str = ""


#: op name -> its definition
REGISTRY: dict[str, OpDef] = {}


def register(name: str, *, arity, attrs=(), params=(), home="digital", check, eval, unit=None, remap=None,
             swing=False, to_onnx=None, doc="") -> OpDef:
    if name in REGISTRY:
        raise ValueError(f"IR op {name!r} is registered twice")
    if home not in HOMES:
        raise ValueError(f"IR op {name!r}: home {home!r} is not one of {HOMES}")
    if swing and to_onnx is None:
        raise ValueError(f"IR op {name!r}: a swing op needs to_onnx")
    if isinstance(unit, str) or unit is None:
        unit = (lambda d, u=unit: u)
    REGISTRY[name] = OpDef(name, arity, tuple(attrs), tuple(params), home, check, eval, unit, remap, swing,
                           to_onnx, doc)
    return REGISTRY[name]


def op(name: str) -> OpDef:
    return REGISTRY[name]


def row_major(dims) -> list[int]:
    """Row-major strides of a shape."""
    return [int(np.prod(dims[q + 1:], dtype=np.int64)) for q in range(len(dims))]


def same_shape(ir, n, d, ins) -> None:
    """Shape rule of an elementwise operator: the output has its operand's shape."""
    if ins[0] != d["shape"]:
        fail(ir, n, f"shape {d['shape']} differs from operand shape {ins[0]}")


def size(dims) -> int:
    return int(np.prod(dims, dtype=np.int64))


from . import elementwise, io, matmul, offload, recurrent, shape, window  # noqa: E402,F401  (they register the ops)
