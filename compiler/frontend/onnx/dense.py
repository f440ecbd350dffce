"""Matrix products with a constant matrix: Gemm and MatMul (either side, tokens on leading axes)."""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import kernels as K
from ..common import check_weights
from .reader import Val
from .registry import lowers


def _dense(cx, node, x: Val, W: np.ndarray, bias, out_axis: int | None) -> Val:
    """``y = W x + b`` over the last axis of ``x``; leading per-sample axes (tokens of an
    ``[N, T, K]`` input) each read the same crossbar, like the positions of a convolution."""
    m = W.shape[0]
    shape = tuple(x.shape[:-1]) + (m,)
    b = np.zeros(m) if bias is None else cx.per_sample(node, bias, Val("", (m,), out_axis), "bias C")
    name = cx.emit(node, "dense", shape, [x.node], attrs={"activation": dict(K.NO_ACT)}, params={"W": W, "b": b})
    return Val(name, shape, out_axis)


def _need_vector(cx, node, x: Val, batch_axis, role: str):
    if len(x.shape) != 1 or x.batch_axis != batch_axis:
        want = "[N, K]" if batch_axis == 0 else "[K, N]" if batch_axis == 1 else "[K]"
        raise cx.err(node, f"{role} has per-sample shape {list(x.shape)} with batch axis "
                             f"{x.batch_axis}; this form needs it laid out as {want} "
                             "(declare the batch dimension symbolic to place it)", UnsupportedOpError)


def _weight_b(cx, node, B, tb: int, k: int) -> np.ndarray:
    """Gemm's constant B as [K, M] (transposed if transB), checked against ``k`` input features."""
    B = cx._weight(node, 1, B)
    Bp = B.T if tb else B
    if Bp.ndim != 2 or Bp.shape[0] != k:
        raise cx.err(node, f"weight B{'^T' if tb else ''} has shape {list(Bp.shape)}, "
                           f"expected [{k}, M] to match {k} input features")
    return Bp


@lowers("Gemm")
def op_gemm(cx, node, attrs):
    cx._nin(node, 2, 3)
    alpha = float(cx._attr(attrs, "alpha", 1.0))
    beta = float(cx._attr(attrs, "beta", 1.0))
    ta, tb = int(cx._attr(attrs, "transA", 0)), int(cx._attr(attrs, "transB", 0))
    A, B = cx.get(node, node.input[0]), cx.get(node, node.input[1])
    C = cx.const(node, node.input[2], "bias C") if len(node.input) > 2 and node.input[2] else None
    bias = None if C is None else beta * check_weights(cx.where, cx.label(node), f"bias '{node.input[2]}'", C)
    if not isinstance(A, Val) and not isinstance(B, Val):
        A2, B2 = (A.T if ta else A), (B.T if tb else B)
        return alpha * (A2 @ B2) + (0 if bias is None else bias)
    if isinstance(A, Val) and isinstance(B, Val):
        raise cx.err(node, "both operands are runtime tensors; one must be a weight initializer",
                       UnsupportedOpError)
    if isinstance(A, Val) and A.batch_axis is None and not ta and len(A.shape) == 2:
        # a per-sample matrix (a model defined at batch 1 only, after a host node run one sample
        # at a time): each of its rows reads the same crossbar, like the tokens of a MatMul
        return _dense(cx, node, A, alpha * _weight_b(cx, node, B, tb, A.shape[1]).T, bias, None)
    if isinstance(A, Val):
        # Y[N,M] = A'[N,K] B'[K,M]: per sample y = (alpha B')^T x
        _need_vector(cx, node, A, 1 if ta else 0, "operand A")
        return _dense(cx, node, A, alpha * _weight_b(cx, node, B, tb, A.shape[0]).T, bias, 0)
    # Y[M,N] = A'[M,K] B'[K,N]: per sample (a column) y = alpha A' x
    _need_vector(cx, node, B, 0 if tb else 1, "operand B")
    A = cx._weight(node, 0, A)
    Ap = A.T if ta else A
    if Ap.ndim != 2 or Ap.shape[1] != B.shape[0]:
        raise cx.err(node, f"weight A{'^T' if ta else ''} has shape {list(Ap.shape)}, "
                             f"expected [M, {B.shape[0]}] to match {B.shape[0]} input features")
    return _dense(cx, node, B, alpha * Ap, bias, 1)


@lowers("MatMul")
def op_matmul(cx, node, attrs):
    cx._nin(node, 2, 2)
    A, B = (cx.get(node, i) for i in node.input)
    if not isinstance(A, Val) and not isinstance(B, Val):
        return np.matmul(A, B)
    if isinstance(A, Val) and isinstance(B, Val):
        raise cx.err(node, "both operands are runtime tensors; one must be a weight initializer",
                       UnsupportedOpError)
    if isinstance(A, Val):
        if len(A.shape) > 1 and ((A.batch_axis is not None and A.batch_axis < len(A.shape))
                                 or (A.batch_axis is None and cx.batch_one)):
            # [N, T.., K] @ [K, M]: per token (bias, if any, comes from a following Add), wherever the
            # batch sits before the last axis (a sequence-first [T, N, K]); a per-sample [T.., K] of a
            # model defined at batch 1 only likewise
            Bm = cx._weight(node, 1, B)
            if Bm.ndim != 2 or Bm.shape[0] != A.shape[-1]:
                raise cx.err(node, f"weight B has shape {list(Bm.shape)}, expected [{A.shape[-1]}, M] for "
                                     f"the per-token product of an operand of per-sample shape {list(A.shape)}",
                               UnsupportedOpError)
            return _dense(cx, node, A, Bm.T, None, A.batch_axis)
        _need_vector(cx, node, A, A.batch_axis if A.batch_axis in (0, None) else 0, "operand A")
        Bm = cx._weight(node, 1, B)
        if Bm.ndim != 2 or Bm.shape[0] != A.shape[0]:
            raise cx.err(node, f"weight B has shape {list(Bm.shape)}, expected [{A.shape[0]}, M]")
        return _dense(cx, node, A, Bm.T, None, A.batch_axis)
    _need_vector(cx, node, B, 1, "operand B")
    Am = cx._weight(node, 0, A)
    if Am.ndim != 2 or Am.shape[1] != B.shape[0]:
        raise cx.err(node, f"weight A has shape {list(Am.shape)}, expected [M, {B.shape[0]}]")
    return _dense(cx, node, B, Am, None, 1)
