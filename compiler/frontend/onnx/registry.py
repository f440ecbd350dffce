"""The ONNX lowering registry: which function lowers an ONNX operator, by op type and opset.

A lowering is ``fn(cx, node, attrs) -> Val | np.ndarray``: ``cx`` is the reader (``reader.Lowering``:
its environment of values, ``emit`` for IR nodes, ``err`` for errors, attribute helpers), ``attrs``
the node's attributes by name. It returns the node's (first) value: a runtime ``Val`` or a constant.
A lowering that raises ``UnsupportedOpError`` before emitting anything sends the node to the host.

Families live in this package's modules (``activation``, ``conv``, ``dense``, ``elementwise``,
``norm``, ``recurrent``, ``resample``, ``shape``), one function per operator, registered with :func:`lowers`.
"""

from __future__ import annotations

from typing import Callable

#: op type -> [(since, until, fn)]: fn lowers the op for opsets since <= opset < until (None: no end)
LOWERINGS: dict[str, list[tuple[int, int | None, Callable]]] = {}


def lowers(op_type: str, since: int = 1, until: int | None = None):
    """Register the decorated function as the lowering of ``op_type`` for opsets [since, until)."""
    def deco(fn):
        for s, u, _ in LOWERINGS.get(op_type, []):
            if since < (u or 1 << 30) and s < (until or 1 << 30):
                raise ValueError(f"ONNX lowering of {op_type} for opsets {since}..{until} overlaps {s}..{u}")
        LOWERINGS.setdefault(op_type, []).append((since, until, fn))
        return fn
    return deco


def lookup(op_type: str, opset: int) -> Callable | None:
    """The lowering of ``op_type`` at ``opset`` (the default domain's), or None."""
    for since, until, fn in LOWERINGS.get(op_type, ()):
        if since <= opset and (until is None or opset < until):
            return fn
    return None


def supported() -> tuple[str, ...]:
    return tuple(sorted(LOWERINGS))
