"""Windows over images: Conv (1-D lifted to 2-D), MaxPool/AveragePool (ceil_mode), GlobalAveragePool, Pad."""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import kernels as K
from ..common import MAX_WEIGHT_ELEMENTS, check_weights
from .reader import Val
from .registry import lowers

_AUTO_PAD = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def _image(cx, node, k: int = 0) -> Val:
    x = cx.get(node, node.input[k])
    if not isinstance(x, Val) or x.batch_axis != 0 or len(x.shape) != 3:
        shape = list(x.full_shape(1)) if isinstance(x, Val) else "constant"
        raise cx.err(node, f"expects a runtime [N, C, H, W] tensor, got {shape}", UnsupportedOpError)
    return x


def _window(cx, node, attrs, x: Val, kernel) -> dict:
    """Kernel, stride, pads [t, l, b, r] and dilation of a 2-D window op, auto_pad resolved."""
    kernel = [int(k) for k in kernel]
    if len(kernel) != 2:
        raise cx.err(node, f"attribute kernel_shape={kernel}: only 2-D windows are supported", UnsupportedOpError)
    stride = [int(v) for v in cx._attr(attrs, "strides", [1, 1])]
    dil = [int(v) for v in cx._attr(attrs, "dilations", [1, 1])]
    pads = [int(v) for v in cx._attr(attrs, "pads", [0, 0, 0, 0])]
    auto = cx._attr(attrs, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    for name, v, n in (("strides", stride, 2), ("dilations", dil, 2), ("pads", pads, 4)):
        if len(v) != n or (min(v) < (0 if name == "pads" else 1)):
            raise cx.err(node, f"attribute {name}={v} is invalid for a 2-D window")
    if auto not in _AUTO_PAD:
        raise cx.err(node, f"attribute auto_pad={auto!r} is not supported; expected one of {_AUTO_PAD}",
                       UnsupportedOpError)
    _, H, W = x.shape
    if auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto.startswith("SAME"):
        pads = [0, 0, 0, 0]
        for ax, size in enumerate((H, W)):
            out = -(-size // stride[ax])
            total = max((out - 1) * stride[ax] + (kernel[ax] - 1) * dil[ax] + 1 - size, 0)
            small, big = total // 2, total - total // 2
            pads[ax], pads[ax + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
    for ax, size in enumerate((H, W)):
        span = (kernel[ax] - 1) * dil[ax] + 1
        if span > size + pads[ax] + pads[ax + 2]:
            raise cx.err(node, f"attribute kernel_shape={kernel} (dilated span {span}) is larger than the "
                                 f"padded input {size + pads[ax] + pads[ax + 2]} on axis {ax + 2}")
    ceil_pads = [0, 0]
    if int(cx._attr(attrs, "ceil_mode", 0)):
        # ceil_mode: the output size rounds up, as if the input had more padding at its end; a last
        # window that would start in the end padding is dropped (PyTorch's and onnxruntime's rule)
        for ax, size in enumerate((H, W)):
            span = (kernel[ax] - 1) * dil[ax] + 1
            full = size + pads[ax] + pads[ax + 2]
            out = -(-(full - span) // stride[ax]) + 1
            if (out - 1) * stride[ax] >= size + pads[ax]:
                out -= 1
            ceil_pads[ax] = max(0, (out - 1) * stride[ax] + span - full)
    return {"kernel": kernel, "stride": stride, "pads": pads, "dilation": dil, "ceil_pads": ceil_pads}


def _lift_1d(cx, node, attrs):
    """A 1-D window op (Conv1d, MaxPool1d, AvgPool1d on [N, C, L]) as the 2-D one with a unit
    height: ``(x reshaped to [C, 1, L], the attributes with a unit first axis)``, or None if the
    operand is not a runtime [N, C, L] tensor."""
    import onnx.helper as oh

    x = cx.get(node, node.input[0])
    if not (isinstance(x, Val) and x.batch_axis == 0 and len(x.shape) == 2):
        return None
    lifted = dict(attrs)
    for key in ("kernel_shape", "strides", "dilations"):
        if key in attrs:
            lifted[key] = oh.make_attribute(key, [1] + [int(v) for v in cx._attr(attrs, key, [])])
    if "pads" in attrs:
        p = [int(v) for v in cx._attr(attrs, "pads", [])]
        lifted["pads"] = oh.make_attribute("pads", [0, p[0], 0, p[1]] if len(p) == 2 else p)
    shape = (x.shape[0], 1, x.shape[1])
    return Val(cx.emit(node, "reshape", shape, [x.node]), shape, 0), lifted


def _drop_1d(cx, node, y: Val) -> Val:
    """The result of a lifted 1-D op, [C, 1, L] back to [C, L]."""
    shape = (y.shape[0], y.shape[2])
    return Val(cx.emit(node, "reshape", shape, [y.node]), shape, 0)


@lowers("Conv")
def op_conv(cx, node, attrs):
    cx._nin(node, 2, 3)
    W = cx._weight(node, 1, cx.const(node, node.input[1], "weight"))
    lifted = _lift_1d(cx, node, attrs) if W.ndim == 3 else None
    if lifted is not None:
        x, attrs = lifted
        return _drop_1d(cx, node, _conv(cx, node, attrs, x, W[:, :, None, :]))
    return _conv(cx, node, attrs, _image(cx, node), W)


def _conv(cx, node, attrs, x: Val, W: np.ndarray) -> Val:
    group = int(cx._attr(attrs, "group", 1))
    if W.ndim != 4:
        raise cx.err(node, f"weight '{node.input[1]}' has shape {list(W.shape)}; only 2-D convolution "
                             "([C_out, C_in/group, kh, kw]) is supported", UnsupportedOpError)
    if group < 1 or W.shape[0] % group:
        raise cx.err(node, f"attribute group={group} does not divide the {W.shape[0]} output channels")
    if W.shape[1] * group != x.shape[0]:
        raise cx.err(node, f"weight '{node.input[1]}' expects {W.shape[1] * group} input channels "
                             f"({W.shape[1]} per group x group={group}), the input has {x.shape[0]}")
    ks = cx._attr(attrs, "kernel_shape", list(W.shape[2:]))
    if list(ks) != list(W.shape[2:]):
        raise cx.err(node, f"attribute kernel_shape={list(ks)} differs from the weight's {list(W.shape[2:])}")
    geo = _window(cx, node, attrs, x, ks)
    if any(geo.pop("ceil_pads")):
        raise cx.err(node, "attribute ceil_mode is not defined for Conv", UnsupportedOpError)
    b = np.zeros(W.shape[0])
    if len(node.input) > 2 and node.input[2]:
        b = check_weights(cx.where, cx.label(node), f"bias '{node.input[2]}'",
                          cx.const(node, node.input[2], "bias"))
        if b.shape != (W.shape[0],):
            raise cx.err(node, f"bias '{node.input[2]}' has shape {list(b.shape)}, expected [{W.shape[0]}]")
    ho, wo = K.window_geometry(x.shape, geo["kernel"], geo["stride"], geo["pads"], geo["dilation"])
    shape = (W.shape[0], ho, wo)
    name = cx.emit(node, "conv", shape, [x.node], attrs={"activation": dict(K.NO_ACT), **geo, "group": group},
                     params={"W": W, "b": b})
    return Val(name, shape, 0)


def _pool(cx, node, attrs, kind: str):
    cx._nin(node, 1, 1)
    if "kernel_shape" not in attrs:
        raise cx.err(node, "attribute kernel_shape is required")
    lifted = _lift_1d(cx, node, attrs) if len(cx._attr(attrs, "kernel_shape", [])) == 1 else None
    x, attrs = lifted if lifted is not None else (_image(cx, node), attrs)
    geo = _window(cx, node, attrs, x, cx._attr(attrs, "kernel_shape", None))
    if kind == "avg" and geo["dilation"] != [1, 1]:
        raise cx.err(node, "dilated average pooling is not supported", UnsupportedOpError)
    include = bool(cx._attr(attrs, "count_include_pad", 0))
    extra = geo.pop("ceil_pads")
    if any(extra) and kind == "avg" and include and any(geo["pads"]):
        # the overhang of ceil_mode is not counted, the padding is: two kinds of pad in one window
        raise cx.err(node, "ceil_mode with count_include_pad=1 and pads is not supported", UnsupportedOpError)
    if any(extra):
        # the overhang is padding that no average counts (with count_include_pad=1 and no pads,
        # PyTorch and onnxruntime divide by the part of the window inside the input too)
        geo["pads"] = [geo["pads"][0], geo["pads"][1], geo["pads"][2] + extra[0], geo["pads"][3] + extra[1]]
        include = False
    ho, wo = K.window_geometry(x.shape, geo["kernel"], geo["stride"], geo["pads"], geo["dilation"])
    shape = (x.shape[0], ho, wo)
    a = {"kind": kind, **geo, "count_include_pad": include}
    y = Val(cx.emit(node, "pool", shape, [x.node], attrs=a), shape, 0)
    return _drop_1d(cx, node, y) if lifted is not None else y


@lowers("MaxPool")
def op_maxpool(cx, node, attrs):
    if len([o for o in node.output if o]) > 1:
        raise cx.err(node, "the Indices output is not supported", UnsupportedOpError)
    if int(cx._attr(attrs, "storage_order", 0)):
        raise cx.err(node, "attribute storage_order=1 is not supported", UnsupportedOpError)
    return _pool(cx, node, attrs, "max")


@lowers("AveragePool")
def op_averagepool(cx, node, attrs):
    return _pool(cx, node, attrs, "avg")


@lowers("GlobalAveragePool")
def op_globalaveragepool(cx, node, attrs):
    cx._nin(node, 1, 1)
    lifted = _lift_1d(cx, node, attrs)
    x = lifted[0] if lifted is not None else _image(cx, node)
    shape = (x.shape[0], 1, 1)
    y = Val(cx.emit(node, "global_avgpool", shape, [x.node]), shape, 0)
    if lifted is not None:     # [N, C, L] -> [N, C, 1]
        return Val(cx.emit(node, "reshape", (x.shape[0], 1), [y.node]), (x.shape[0], 1), 0)
    return y


@lowers("Pad")
def op_pad(cx, node, attrs):
    x = cx.get(node, node.input[0])
    if not isinstance(x, Val):
        raise cx.err(node, "has no runtime operand")
    mode = cx._attr(attrs, "mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if cx.opset < 11:
        pads, value = [int(p) for p in cx._attr(attrs, "pads", [])], float(cx._attr(attrs, "value", 0.0))
    else:
        pads = [int(p) for p in cx.const(node, node.input[1], "pads").reshape(-1)]
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            value = float(np.asarray(cx.const(node, node.input[2], "constant_value")).reshape(-1)[0])
        if len(node.input) > 3 and node.input[3]:
            raise cx.err(node, "the axes input is not supported", UnsupportedOpError)
    full = x.full_shape(1)
    if mode != "constant" or x.batch_axis != 0 or len(full) != 4 or len(pads) != 8 or min(pads) < 0 \
            or any(pads[k] for k in (0, 1, 4, 5)):
        raise cx.err(node, f"only zero-or-constant padding of H and W of an [N, C, H, W] map has a lowering "
                             f"(mode {mode}, pads {pads})", UnsupportedOpError)
    p4 = [pads[2], pads[3], pads[6], pads[7]]            # [top, left, bottom, right]
    c, h, w = x.shape
    shape = (c, h + p4[0] + p4[2], w + p4[1] + p4[3])
    return Val(cx.emit(node, "pad", shape, [x.node], attrs={"pads": p4, "value": value}), shape, 0)


@lowers("ConvTranspose")
def op_convtranspose(cx, node, attrs):
    """A transposed convolution as a convolution followed by a depth-to-space (the sub-pixel form,
    Shi et al., CVPR 2016): output phase (a, b) of a stride (sh, sw) is a correlation of the input
    with the taps W[..., a + sh t, b + sw u], so one convolution with C_out sh sw output channels and
    a ceil(k / s) kernel computes every phase on crossbars, the data-movement unit interleaves the
    phases, and slices crop the pads."""
    from .resample import depth_to_space, view
    from .shape import slice_of

    cx._nin(node, 2, 3)
    W = cx._weight(node, 1, cx.const(node, node.input[1], "weight"))
    one_d = W.ndim == 3
    x = cx.get(node, node.input[0])
    if one_d:
        if not (isinstance(x, Val) and x.batch_axis == 0 and len(x.shape) == 2):
            raise cx.err(node, "expects a runtime [N, C, L] tensor", UnsupportedOpError)
        x = view(cx, node, x, (x.shape[0], 1, x.shape[1]))
        W = W[:, :, None, :]
    else:
        x = _image(cx, node)
    if W.ndim != 4 or W.shape[0] != x.shape[0]:
        raise cx.err(node, f"weight '{node.input[1]}' of shape {list(W.shape)} does not fit {x.shape[0]} input "
                           "channels ([C_in, C_out, kh, kw])")

    def pair(key, default, n=2):
        v = [int(t) for t in cx._attr(attrs, key, default)]
        if one_d and len(v) == n // 2:
            v = [0 if key in ("pads", "output_padding") else 1] + v if n == 2 else [0, v[0], 0, v[1]]
        if len(v) != n:
            raise cx.err(node, f"attribute {key}={v} does not fit a {'1' if one_d else '2'}-D kernel")
        return v

    c_in, c_out, kh, kw = W.shape
    sh, sw = pair("strides", [1, 1])
    pt, pl, pb, pr = pair("pads", [0, 0, 0, 0], 4)
    oh, ow = pair("output_padding", [0, 0])
    if int(cx._attr(attrs, "group", 1)) != 1 or pair("dilations", [1, 1]) != [1, 1]:
        raise cx.err(node, "only group 1 and dilation 1 are lowered", UnsupportedOpError)
    auto = cx._attr(attrs, "auto_pad", b"NOTSET")
    if "output_shape" in attrs or (auto.decode() if isinstance(auto, bytes) else str(auto)) != "NOTSET":
        raise cx.err(node, "output_shape / auto_pad: only explicit pads are lowered", UnsupportedOpError)
    if min(sh, sw) < 1 or min(pt, pl, pb, pr, oh, ow) < 0:
        raise cx.err(node, f"strides {[sh, sw]} / pads {[pt, pl, pb, pr]} / output_padding {[oh, ow]} are invalid")
    b = np.zeros(c_out)
    if len(node.input) > 2 and node.input[2]:
        b = check_weights(cx.where, cx.label(node), f"bias '{node.input[2]}'", cx.const(node, node.input[2], "bias"))
        if b.shape != (c_out,):
            raise cx.err(node, f"bias '{node.input[2]}' has shape {list(b.shape)}, expected [{c_out}]")
    th, tw = -(-kh // sh), -(-kw // sw)
    if c_out * sh * sw * c_in * th * tw > MAX_WEIGHT_ELEMENTS:
        raise cx.err(node, f"its phase convolution would hold {c_out * sh * sw * c_in * th * tw} weights; the "
                           f"limit is {MAX_WEIGHT_ELEMENTS}", UnsupportedOpError)
    Kp = np.zeros((c_out, sh, sw, c_in, th, tw))
    for a in range(sh):
        for u in range(th):
            ky = a + sh * (th - 1 - u)
            if ky >= kh:
                continue
            for bb in range(sw):
                for v in range(tw):
                    kx = bb + sw * (tw - 1 - v)
                    if kx < kw:
                        Kp[:, a, bb, :, u, v] = W[:, :, ky, kx].T
    _, H, Wd = x.shape
    ho, wo = (H - 1) * sh + oh + kh - pt - pb, (Wd - 1) * sw + ow + kw - pl - pr
    if ho < 1 or wo < 1:
        raise cx.err(node, f"pads {[pt, pl, pb, pr]} leave an empty output ({ho}x{wo})")
    # output_padding can reach past the last input's taps: extra phase rows (columns) that only the
    # bias reaches, from extra zero padding at the bottom (right)
    eh = max(0, -(-(pt + ho - (H + th - 1) * sh) // sh))
    ew = max(0, -(-(pl + wo - (Wd + tw - 1) * sw) // sw))
    shape = (c_out * sh * sw, H + th - 1 + eh, Wd + tw - 1 + ew)
    geo = {"kernel": [th, tw], "stride": [1, 1], "pads": [th - 1, tw - 1, th - 1 + eh, tw - 1 + ew], "dilation": [1, 1]}
    y = Val(cx.emit(node, "conv", shape, [x.node], attrs={"activation": dict(K.NO_ACT), **geo, "group": 1},
                    params={"W": Kp.reshape(shape[0], c_in, th, tw), "b": np.repeat(b, sh * sw)}), shape, 0)
    if sh * sw > 1:
        y = depth_to_space(cx, node, y, sh, sw)
    if (pt, ho) != (0, y.shape[1]):
        y = slice_of(cx, node, y, 2, pt, ho, 1)
    if (pl, wo) != (0, y.shape[2]):
        y = slice_of(cx, node, y, 3, pl, wo, 1)
    return _drop_1d(cx, node, y) if one_d else y
