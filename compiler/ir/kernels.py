"""Numeric kernels shared by the IR interpreter and the passes (numpy, batch-first, float64)."""

from __future__ import annotations

import numpy as np

ACT_KINDS = ("none", "relu", "leaky_relu", "sigmoid", "tanh", "clip", "gelu", "hardswish")
NO_ACT = {"kind": "none"}


def activation(y: np.ndarray, act: dict) -> np.ndarray:
    k = act["kind"]
    if k == "none":
        return y
    if k == "relu":
        return np.maximum(y, 0.0)
    if k == "leaky_relu":
        return np.where(y >= 0, y, act["alpha"] * y)
    if k == "sigmoid":
        return 1.0 / (1.0 + np.exp(-y))
    if k == "tanh":
        return np.tanh(y)
    if k == "clip":
        return np.clip(y, act["lo"], act["hi"])
    if k == "gelu":   # exact (erf) form, or ONNX Gelu's approximate="tanh" form
        if act.get("approximate", "none") == "tanh":
            return 0.5 * y * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (y + 0.044715 * y ** 3)))
        from scipy.special import erf

        return 0.5 * y * (1.0 + erf(y / np.sqrt(2.0)))
    if k == "hardswish":   # x * relu6(x + 3) / 6
        return y * np.clip(y + 3.0, 0.0, 6.0) / 6.0
    raise ValueError(f"unknown activation {k!r}")


def out_size(size: int, k: int, stride: int, pad0: int, pad1: int, dilation: int) -> int:
    return (size + pad0 + pad1 - dilation * (k - 1) - 1) // stride + 1


def window_geometry(shape, kernel, stride, pads, dilation):
    """Output (Ho, Wo) of a 2-D window op on a (C, H, W) input; pads are [top, left, bottom, right]."""
    _, H, W = shape
    return (out_size(H, kernel[0], stride[0], pads[0], pads[2], dilation[0]),
            out_size(W, kernel[1], stride[1], pads[1], pads[3], dilation[1]))


def windows(x: np.ndarray, kernel, stride, pads, dilation, fill: float) -> np.ndarray:
    """[N, C, Ho, Wo, kh, kw] views of the padded input."""
    n, c, h, w = x.shape
    xp = np.full((n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), fill, dtype=np.float64)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x
    ho, wo = window_geometry((c, h, w), kernel, stride, pads, dilation)
    kh, kw = kernel
    iy = (np.arange(ho) * stride[0])[:, None] + np.arange(kh) * dilation[0]   # [Ho, kh]
    ix = (np.arange(wo) * stride[1])[:, None] + np.arange(kw) * dilation[1]   # [Wo, kw]
    return xp[:, :, iy[:, None, :, None], ix[None, :, None, :]]               # [N, C, Ho, Wo, kh, kw]


def im2col(x: np.ndarray, kernel, stride, pads, dilation) -> np.ndarray:
    """[N, C, H, W] -> [N, Ho*Wo, C*kh*kw]: one row per output position, patch ordered (c, ky, kx),
    the order of ``W.reshape(C_out, -1)`` for an ONNX weight ``W[C_out, C, kh, kw]``."""
    win = windows(x, kernel, stride, pads, dilation, 0.0)
    n, c, ho, wo, kh, kw = win.shape
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho * wo, c * kh * kw)


def pool(x: np.ndarray, kind: str, kernel, stride, pads, dilation, count_include_pad: bool = False) -> np.ndarray:
    if kind == "max":
        return windows(x, kernel, stride, pads, dilation, -np.inf).max(axis=(4, 5))
    s = windows(x, kernel, stride, pads, dilation, 0.0).sum(axis=(4, 5))
    if count_include_pad:
        return s / (kernel[0] * kernel[1])
    ones = np.ones((1, 1) + x.shape[2:])
    cnt = windows(ones, kernel, stride, pads, dilation, 0.0).sum(axis=(4, 5))
    return s / cnt


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def grouped_matmul(cols: np.ndarray, W: np.ndarray, group: int) -> np.ndarray:
    """``cols [N, P, group*Kg]`` (im2col patches, channel-major) times a grouped layer matrix
    ``W [C_out, Kg]``: output channel block k reads only patch rows [k*Kg, (k+1)*Kg)."""
    if group == 1:
        return cols @ W.T
    n, p, _ = cols.shape
    m, kg = W.shape
    z = np.einsum("npgk,gmk->npgm", cols.reshape(n, p, group, kg), W.reshape(group, m // group, kg))
    return z.reshape(n, p, m)


def layer_matrix(p: dict) -> np.ndarray:
    """The ``[out, in]`` matrix a dense/conv layer (or a recurrent layer) computes with: quantized once
    it has conductances."""
    if "gpos" in p:
        return (p["gpos"] - p["gneg"]).T * p["w_scale"][:, None]
    W = p["W"]
    return W.reshape(W.shape[0], -1)
