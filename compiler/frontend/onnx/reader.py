"""ONNX front end.

Tensors are tracked with their full ONNX shape split into a per-sample shape and the position of
the batch axis, because the IR is per sample. A graph input's batch axis is its one symbolic
dimension (axis 0 when all dimensions are fixed, none for a rank-1 fixed input).
``Gemm``/``MatMul`` accept the runtime operand on either side, so ``transA``/``transB`` variants
that put the batch on axis 1 are lowered too; ``alpha``/``beta`` are folded into the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, UnsupportedOpError
from ..ir import IR
from ..ir import kernels as K
from ..ir.names import Namer
from .common import check_weights
from .fold import default_opset, fold_constants

SUPPORTED_OPS = ("Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout",
                 "Flatten", "Gelu", "Gemm", "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu",
                 "MatMul", "MaxPool", "Mul", "Pad", "ReduceMean", "Relu", "Reshape", "Sigmoid", "Softmax", "Squeeze", "Sub", "Sum", "Tanh", "Transpose",
                 "Unsqueeze")
_AUTO_PAD = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


@dataclass(frozen=True)
class Val:
    """A runtime tensor: the IR node producing it, per-sample shape, and batch axis (or None)."""

    node: str
    shape: tuple[int, ...]
    batch_axis: int | None

    def full_shape(self, batch: int = 1) -> tuple[int, ...]:
        s = list(self.shape)
        if self.batch_axis is not None:
            s.insert(self.batch_axis, batch)
        return tuple(s)


class _Lowering:
    def __init__(self, model, path: Path):
        import onnx.numpy_helper as nph

        self.nph = nph
        self.path = path
        self.where = str(path)
        self.model = model
        graph = model.graph
        self.ir = IR(graph.name or path.stem, source=str(path))
        self.namer = Namer()
        self.env: dict[str, object] = {}
        self.index = 0
        self.batch_one = False
        self.opset = default_opset(model)
        for init in graph.initializer:
            self.env[init.name] = self._tensor(init, f"initializer '{init.name}'")

    # -- helpers --------------------------------------------------------------------------------
    def _tensor(self, t, what: str) -> np.ndarray:
        try:
            return self.nph.to_array(t)
        except Exception as e:  # noqa: BLE001 - onnx raises many types for broken tensors
            raise InputError(self.where, f"{what}: unreadable tensor data ({type(e).__name__}: {e})") from None

    def label(self, node) -> str:
        out = node.output[0] if node.output else "?"
        return node.name or f"#{self.index} (unnamed, output '{out}')"

    def err(self, node, what: str, cls=InputError):
        return cls(self.where, f"node '{self.label(node)}' ({node.op_type}): {what}")

    def get(self, node, name: str):
        if name not in self.env:
            raise self.err(node, f"input '{name}' is not produced by any node, input or initializer")
        return self.env[name]

    def const(self, node, name: str, what: str) -> np.ndarray:
        v = self.get(node, name)
        if isinstance(v, Val):
            raise self.err(node, f"{what} '{name}' must be a constant (initializer), not a runtime tensor",
                           UnsupportedOpError)
        return v

    def per_sample(self, node, c: np.ndarray, val: Val, what: str) -> np.ndarray:
        """A constant combined elementwise with ``val``, reduced to one sample."""
        full = val.full_shape(1)
        try:
            out_shape = np.broadcast_shapes(c.shape, full)
        except ValueError:
            out_shape = None
        if out_shape != full:
            raise self.err(node, f"{what} of shape {list(c.shape)} does not broadcast to the "
                                 f"operand's per-sample shape {list(full)} (batch axis {val.batch_axis})")
        b = np.broadcast_to(c, full)
        return b if val.batch_axis is None else np.take(b, 0, axis=val.batch_axis)

    def emit(self, node, op, shape, inputs, attrs=None, params=None) -> str:
        origin = node.name or f"{node.op_type}_{self.index}"
        name = self.namer.fresh(origin)
        self.ir.add(name, op, shape, inputs=inputs, attrs=attrs, params=params, origin=origin)
        return name

    # -- graph ----------------------------------------------------------------------------------
    def run(self) -> IR:
        graph = self.model.graph
        inits = {i.name for i in graph.initializer}
        self.used = {i for n in graph.node for i in n.input if i} | {o.name for o in graph.output}
        declared = [i for i in graph.input if i.name not in inits]
        # a declared input no node reads is left out of the chip (the float reference feeds it zeros)
        real_inputs = [i for i in declared if i.name in self.used]
        if not real_inputs:
            raise InputError(self.where, "graph has no runtime input" if not declared else
                             f"no node reads the graph input(s) {', '.join(repr(i.name) for i in declared)}")
        for vi in real_inputs:
            self._input(vi)
        for self.index, node in enumerate(graph.node):
            self._node(node)
        if not graph.output:
            raise InputError(self.where, "graph has no output")
        for vi in graph.output:
            v = self.env.get(vi.name)
            if not isinstance(v, Val):
                raise InputError(self.where, f"graph output '{vi.name}' is not computed from the input")
            name = self.namer.fresh(vi.name)
            self.ir.add(name, "output", v.shape, inputs=[v.node], attrs={"batch_axis": v.batch_axis},
                        origin=vi.name)
        return self.ir

    def _input(self, vi) -> None:
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise InputError(self.where, f"input '{vi.name}': expected a tensor")
        if t.elem_type not in (1, 10, 11):  # FLOAT, FLOAT16, DOUBLE
            raise InputError(self.where, f"input '{vi.name}': element type {t.elem_type} is not floating point")
        if not t.HasField("shape"):
            raise InputError(self.where, f"input '{vi.name}': shape is not declared")
        if any(d.HasField("dim_value") and d.dim_value <= 0 for d in t.shape.dim):
            raise InputError(self.where, f"input '{vi.name}': a dimension of size 0 in its shape "
                                         f"{[d.dim_value if d.HasField('dim_value') else d.dim_param for d in t.shape.dim]}; "
                                         "a tensor with no elements")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        symbolic = [i for i, d in enumerate(dims) if d is None]
        if len(symbolic) > 1:
            raise InputError(self.where, f"input '{vi.name}': several unknown dimensions {dims}; "
                                         "only the batch dimension may be symbolic")
        if symbolic:
            axis = symbolic[0]
        elif len(dims) >= 2:
            axis = 0
        else:
            axis = None
        shape = tuple(d for i, d in enumerate(dims) if i != axis)
        if not shape:
            raise InputError(self.where, f"input '{vi.name}': no feature dimensions in shape {dims}")
        # exported with a fixed batch of 1 (torch.onnx.export's default): host nodes that embed it
        # (a reshape target, an initial state) may run one sample at a time
        self.batch_one = axis is not None and not symbolic and dims[axis] == 1
        name = self.namer.fresh(vi.name)
        self.ir.add(name, "input", shape, attrs={"batch_axis": axis}, origin=vi.name)
        self.env[vi.name] = Val(name, shape, axis)

    def _node(self, node) -> None:
        if len(node.output) < 1 or not node.output[0]:
            raise self.err(node, "has no output")
        handler = getattr(self, f"_op_{node.op_type}", None) if node.domain in ("", "ai.onnx") else None
        if handler is None:
            self._host(node, f"no crossbar or digital lowering for {node.domain + '.' if node.domain else ''}"
                             f"{node.op_type}")
            return
        attrs = {a.name: a for a in node.attribute}
        mark = self.ir.g.number_of_nodes()
        try:
            out = handler(node, attrs)
        except UnsupportedOpError as e:
            # this form of the operator has no lowering: the host runs it, unless the handler
            # already emitted part of it (then the message stands)
            if self.ir.g.number_of_nodes() != mark:
                raise
            self._host(node, e.what.split("): ", 1)[-1])
            return
        self.env[node.output[0]] = out

    def _host(self, node, reason: str) -> None:
        """Lower ``node`` as host node(s): one per output that something reads."""
        from ..ir import host as H

        operands, xs, params, in_axes, in_full = [], [], {}, [], []
        for k, name in enumerate(node.input):
            if not name:
                operands.append(["-"])
                continue
            v = self.get(node, name)
            if isinstance(v, Val):
                if v.batch_axis is None and not self.batch_one:
                    raise self.err(node, f"runs on the host ({reason}), but its operand '{name}' has no batch "
                                         "axis", UnsupportedOpError)
                operands.append(["x", len(xs)])
                xs.append(v.node)
                in_axes.append(v.batch_axis)
                in_full.append(v.full_shape(1))
            else:
                key = f"c{k}"
                params[key] = np.asarray(v)
                operands.append(["c", key])
        if not xs:
            raise self.err(node, f"has no runtime operand and could not be folded ({reason})", UnsupportedOpError)
        opset = sorted([o.domain, int(o.version)] for o in self.model.opset_import)
        for k, out in enumerate(node.output):
            if not out or out not in self.used:
                continue
            attrs = {"op_type": node.op_type, "onnx": node.SerializeToString().hex(), "operands": operands,
                     "in_axes": in_axes, "output": k, "opset": opset, "reason": reason, "out_axis": None}
            try:
                shape, axis = H.infer_output(attrs, params, in_full, in_axes)
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for bad nodes
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                if not self.batch_one:
                    raise self.err(node, f"runs on the host ({reason}), but onnxruntime cannot run it: {first}",
                                   UnsupportedOpError) from None
                # the model is defined at its exported batch of 1 only: the node runs one sample at a
                # time, and its result is per sample as it is (no batch axis of its own)
                try:
                    shape, axis = H.infer_per_sample(attrs, params, in_full, in_axes), None
                except Exception as e2:  # noqa: BLE001
                    first = (str(e2).strip().splitlines() or [type(e2).__name__])[0]
                    raise self.err(node, f"runs on the host ({reason}), but onnxruntime cannot run it even one "
                                         f"sample at a time: {first}", UnsupportedOpError) from None
                attrs["per_sample"] = True
                attrs["reason"] = f"{reason}; one sample at a time (exported with batch 1)"
            attrs["out_axis"] = axis
            name = self.emit(node, "host", shape, xs, attrs=attrs, params=params)
            self.env[out] = Val(name, shape, axis)

    def _attr(self, attrs, key, default):
        import onnx.helper as oh

        return oh.get_attribute_value(attrs[key]) if key in attrs else default

    def _nin(self, node, lo, hi):
        n = len([i for i in node.input if i])
        if not lo <= n <= hi:
            raise self.err(node, f"expected {lo}..{hi} inputs, got {n}")

    # -- operators ------------------------------------------------------------------------------
    def _op_Constant(self, node, attrs):
        if "value" in attrs:
            return self._tensor(attrs["value"].t, f"node '{self.label(node)}' value")
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                return np.asarray(self._attr(attrs, key, None))
        raise self.err(node, "needs a 'value' attribute (sparse/string constants are not supported)")

    def _op_Transpose(self, node, attrs):
        self._nin(node, 1, 1)
        x = self.get(node, node.input[0])
        perm = self._attr(attrs, "perm", None)
        if not isinstance(x, Val):
            try:
                return np.transpose(x, None if perm is None else [int(p) for p in perm])
            except ValueError as e:
                raise self.err(node, f"attribute perm={list(perm)} does not fit rank {x.ndim}: {e}") from None
        x = self._batch0(node, x)
        rank = len(x.shape) + 1
        perm = list(range(rank))[::-1] if perm is None else [int(p) for p in perm]
        if sorted(perm) != list(range(rank)) or perm[0] != 0:
            raise self.err(node, f"attribute perm={perm} must keep the batch axis first", UnsupportedOpError)
        sp = [p - 1 for p in perm[1:]]
        shape = tuple(x.shape[p] for p in sp)
        return Val(self.emit(node, "transpose", shape, [x.node], attrs={"perm": sp}), shape, 0)

    def _op_Identity(self, node, attrs):
        self._nin(node, 1, 1)
        return self._identity_of(node, node.input[0])

    # -- activations ----------------------------------------------------------------------------
    def _act(self, node, act: dict):
        x = self.get(node, node.input[0])
        if not isinstance(x, Val):
            return K.activation(np.asarray(x, dtype=np.float64), act)
        return Val(self.emit(node, "act", x.shape, [x.node], attrs={"activation": act}), x.shape, x.batch_axis)

    def _op_Relu(self, node, attrs):
        self._nin(node, 1, 1)
        return self._act(node, {"kind": "relu"})

    def _op_LeakyRelu(self, node, attrs):
        self._nin(node, 1, 1)
        return self._act(node, {"kind": "leaky_relu", "alpha": float(self._attr(attrs, "alpha", 0.01))})

    def _op_Sigmoid(self, node, attrs):
        self._nin(node, 1, 1)
        return self._act(node, {"kind": "sigmoid"})

    def _op_Tanh(self, node, attrs):
        self._nin(node, 1, 1)
        return self._act(node, {"kind": "tanh"})

    def _op_Gelu(self, node, attrs):
        self._nin(node, 1, 1)
        approx = self._attr(attrs, "approximate", b"none")
        approx = approx.decode() if isinstance(approx, bytes) else str(approx)
        if approx not in ("none", "tanh"):
            raise self.err(node, f"attribute approximate='{approx}' must be 'none' or 'tanh'")
        return self._act(node, {"kind": "gelu", "approximate": approx})

    def _op_HardSwish(self, node, attrs):
        self._nin(node, 1, 1)
        return self._act(node, {"kind": "hardswish"})

    def _op_Clip(self, node, attrs):
        self._nin(node, 1, 3)
        if self.opset < 11:
            lo, hi = float(self._attr(attrs, "min", -np.inf)), float(self._attr(attrs, "max", np.inf))
        else:
            def bound(k, default):
                if len(node.input) > k and node.input[k]:
                    return float(np.asarray(self.const(node, node.input[k], "bound")).reshape(()))
                return default
            lo, hi = bound(1, -np.inf), bound(2, np.inf)
        if lo > hi:
            raise self.err(node, f"min {lo} exceeds max {hi}")
        return self._act(node, {"kind": "clip", "lo": lo, "hi": hi})

    # -- image ops ------------------------------------------------------------------------------
    def _image(self, node, k: int = 0) -> Val:
        x = self.get(node, node.input[k])
        if not isinstance(x, Val) or x.batch_axis != 0 or len(x.shape) != 3:
            shape = list(x.full_shape(1)) if isinstance(x, Val) else "constant"
            raise self.err(node, f"expects a runtime [N, C, H, W] tensor, got {shape}", UnsupportedOpError)
        return x

    def _window(self, node, attrs, x: Val, kernel) -> dict:
        """Kernel, stride, pads [t, l, b, r] and dilation of a 2-D window op, auto_pad resolved."""
        kernel = [int(k) for k in kernel]
        if len(kernel) != 2:
            raise self.err(node, f"attribute kernel_shape={kernel}: only 2-D windows are supported", UnsupportedOpError)
        stride = [int(v) for v in self._attr(attrs, "strides", [1, 1])]
        dil = [int(v) for v in self._attr(attrs, "dilations", [1, 1])]
        pads = [int(v) for v in self._attr(attrs, "pads", [0, 0, 0, 0])]
        auto = self._attr(attrs, "auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        for name, v, n in (("strides", stride, 2), ("dilations", dil, 2), ("pads", pads, 4)):
            if len(v) != n or (min(v) < (0 if name == "pads" else 1)):
                raise self.err(node, f"attribute {name}={v} is invalid for a 2-D window")
        if auto not in _AUTO_PAD:
            raise self.err(node, f"attribute auto_pad={auto!r} is not supported; expected one of {_AUTO_PAD}",
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
                raise self.err(node, f"attribute kernel_shape={kernel} (dilated span {span}) is larger than the "
                                     f"padded input {size + pads[ax] + pads[ax + 2]} on axis {ax + 2}")
        ceil_pads = [0, 0]
        if int(self._attr(attrs, "ceil_mode", 0)):
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

    def _lift_1d(self, node, attrs):
        """A 1-D window op (Conv1d, MaxPool1d, AvgPool1d on [N, C, L]) as the 2-D one with a unit
        height: ``(x reshaped to [C, 1, L], the attributes with a unit first axis)``, or None if the
        operand is not a runtime [N, C, L] tensor."""
        import onnx.helper as oh

        x = self.get(node, node.input[0])
        if not (isinstance(x, Val) and x.batch_axis == 0 and len(x.shape) == 2):
            return None
        lifted = dict(attrs)
        for key in ("kernel_shape", "strides", "dilations"):
            if key in attrs:
                lifted[key] = oh.make_attribute(key, [1] + [int(v) for v in self._attr(attrs, key, [])])
        if "pads" in attrs:
            p = [int(v) for v in self._attr(attrs, "pads", [])]
            lifted["pads"] = oh.make_attribute("pads", [0, p[0], 0, p[1]] if len(p) == 2 else p)
        shape = (x.shape[0], 1, x.shape[1])
        return Val(self.emit(node, "reshape", shape, [x.node]), shape, 0), lifted

    def _drop_1d(self, node, y: Val) -> Val:
        """The result of a lifted 1-D op, [C, 1, L] back to [C, L]."""
        shape = (y.shape[0], y.shape[2])
        return Val(self.emit(node, "reshape", shape, [y.node]), shape, 0)

    def _op_Conv(self, node, attrs):
        self._nin(node, 2, 3)
        W = self._weight(node, 1, self.const(node, node.input[1], "weight"))
        lifted = self._lift_1d(node, attrs) if W.ndim == 3 else None
        if lifted is not None:
            x, attrs = lifted
            return self._drop_1d(node, self._conv(node, attrs, x, W[:, :, None, :]))
        return self._conv(node, attrs, self._image(node), W)

    def _conv(self, node, attrs, x: Val, W: np.ndarray) -> Val:
        group = int(self._attr(attrs, "group", 1))
        if W.ndim != 4:
            raise self.err(node, f"weight '{node.input[1]}' has shape {list(W.shape)}; only 2-D convolution "
                                 "([C_out, C_in/group, kh, kw]) is supported", UnsupportedOpError)
        if group < 1 or W.shape[0] % group:
            raise self.err(node, f"attribute group={group} does not divide the {W.shape[0]} output channels")
        if W.shape[1] * group != x.shape[0]:
            raise self.err(node, f"weight '{node.input[1]}' expects {W.shape[1] * group} input channels "
                                 f"({W.shape[1]} per group x group={group}), the input has {x.shape[0]}")
        ks = self._attr(attrs, "kernel_shape", list(W.shape[2:]))
        if list(ks) != list(W.shape[2:]):
            raise self.err(node, f"attribute kernel_shape={list(ks)} differs from the weight's {list(W.shape[2:])}")
        geo = self._window(node, attrs, x, ks)
        if any(geo.pop("ceil_pads")):
            raise self.err(node, "attribute ceil_mode is not defined for Conv", UnsupportedOpError)
        b = np.zeros(W.shape[0])
        if len(node.input) > 2 and node.input[2]:
            b = check_weights(self.where, self.label(node), f"bias '{node.input[2]}'",
                              self.const(node, node.input[2], "bias"))
            if b.shape != (W.shape[0],):
                raise self.err(node, f"bias '{node.input[2]}' has shape {list(b.shape)}, expected [{W.shape[0]}]")
        ho, wo = K.window_geometry(x.shape, geo["kernel"], geo["stride"], geo["pads"], geo["dilation"])
        shape = (W.shape[0], ho, wo)
        name = self.emit(node, "conv", shape, [x.node], attrs={"activation": dict(K.NO_ACT), **geo, "group": group},
                         params={"W": W, "b": b})
        return Val(name, shape, 0)

    def _pool(self, node, attrs, kind: str):
        self._nin(node, 1, 1)
        if "kernel_shape" not in attrs:
            raise self.err(node, "attribute kernel_shape is required")
        lifted = self._lift_1d(node, attrs) if len(self._attr(attrs, "kernel_shape", [])) == 1 else None
        x, attrs = lifted if lifted is not None else (self._image(node), attrs)
        geo = self._window(node, attrs, x, self._attr(attrs, "kernel_shape", None))
        if kind == "avg" and geo["dilation"] != [1, 1]:
            raise self.err(node, "dilated average pooling is not supported", UnsupportedOpError)
        include = bool(self._attr(attrs, "count_include_pad", 0))
        extra = geo.pop("ceil_pads")
        if any(extra) and kind == "avg" and include and any(geo["pads"]):
            # the overhang of ceil_mode is not counted, the padding is: two kinds of pad in one window
            raise self.err(node, "ceil_mode with count_include_pad=1 and pads is not supported", UnsupportedOpError)
        if any(extra):
            # the overhang is padding that no average counts (with count_include_pad=1 and no pads,
            # PyTorch and onnxruntime divide by the part of the window inside the input too)
            geo["pads"] = [geo["pads"][0], geo["pads"][1], geo["pads"][2] + extra[0], geo["pads"][3] + extra[1]]
            include = False
        ho, wo = K.window_geometry(x.shape, geo["kernel"], geo["stride"], geo["pads"], geo["dilation"])
        shape = (x.shape[0], ho, wo)
        a = {"kind": kind, **geo, "count_include_pad": include}
        y = Val(self.emit(node, "pool", shape, [x.node], attrs=a), shape, 0)
        return self._drop_1d(node, y) if lifted is not None else y

    def _op_MaxPool(self, node, attrs):
        if len([o for o in node.output if o]) > 1:
            raise self.err(node, "the Indices output is not supported", UnsupportedOpError)
        if int(self._attr(attrs, "storage_order", 0)):
            raise self.err(node, "attribute storage_order=1 is not supported", UnsupportedOpError)
        return self._pool(node, attrs, "max")

    def _op_AveragePool(self, node, attrs):
        return self._pool(node, attrs, "avg")

    def _op_GlobalAveragePool(self, node, attrs):
        self._nin(node, 1, 1)
        lifted = self._lift_1d(node, attrs)
        x = lifted[0] if lifted is not None else self._image(node)
        shape = (x.shape[0], 1, 1)
        y = Val(self.emit(node, "global_avgpool", shape, [x.node]), shape, 0)
        if lifted is not None:     # [N, C, L] -> [N, C, 1]
            return Val(self.emit(node, "reshape", (x.shape[0], 1), [y.node]), (x.shape[0], 1), 0)
        return y

    def _op_ReduceMean(self, node, attrs):
        """The mean over a run of adjacent feature axes, as average pooling: the operand seen as
        (before, reduced, after) is pooled with a (reduced x 1) window (ReduceMean over the tokens
        of a transformer, or over H and W as a global average pool)."""
        x = self.get(node, node.input[0])
        if not isinstance(x, Val):
            raise self.err(node, "has no runtime operand")
        x = self._batch0(node, x)
        rank = len(x.shape) + 1
        if self.opset >= 18:
            axes = self._axes(node, attrs, rank) if len(node.input) > 1 and node.input[1] else []
        else:
            axes = self._axes(node, attrs, rank)
        if not axes:
            raise self.err(node, "reducing every axis (batch included) is not supported", UnsupportedOpError)
        if axes != list(range(axes[0], axes[-1] + 1)):
            raise self.err(node, f"axes {axes} are not adjacent", UnsupportedOpError)
        sh = list(x.shape)
        lo, hi = axes[0] - 1, axes[-1]
        pre, red, post = int(np.prod(sh[:lo])), int(np.prod(sh[lo:hi])), int(np.prod(sh[hi:]))
        keep = int(self._attr(attrs, "keepdims", 1))
        out = tuple(sh[:lo] + ([1] * (hi - lo) if keep else []) + sh[hi:]) or (1,)
        v = self.emit(node, "reshape", (pre, red, post), [x.node])
        a = {"kind": "avg", "kernel": [red, 1], "stride": [1, 1], "pads": [0, 0, 0, 0], "dilation": [1, 1],
             "count_include_pad": True}
        v = self.emit(node, "pool", (pre, 1, post), [v], attrs=a)
        return Val(self.emit(node, "reshape", out, [v]), out, 0)

    def _op_BatchNormalization(self, node, attrs):
        self._nin(node, 5, 5)
        if int(self._attr(attrs, "training_mode", 0)) or len([o for o in node.output if o]) > 1:
            raise self.err(node, "training mode is not supported (inference only)", UnsupportedOpError)
        x = self.get(node, node.input[0])
        if not isinstance(x, Val) or x.batch_axis != 0:
            raise self.err(node, "expects a runtime [N, C, ...] tensor", UnsupportedOpError)
        params = {}
        for k, key in enumerate(("scale", "bias", "mean", "var"), start=1):
            v = check_weights(self.where, self.label(node), f"{key} '{node.input[k]}'",
                              self.const(node, node.input[k], key)).reshape(-1)
            if v.shape != (x.shape[0],):
                raise self.err(node, f"{key} '{node.input[k]}' has {v.size} values for {x.shape[0]} channels")
            params[key] = v
        if np.any(params["var"] < 0):
            raise self.err(node, "variance has negative values")
        eps = float(self._attr(attrs, "epsilon", 1e-5))
        return Val(self.emit(node, "batchnorm", x.shape, [x.node], attrs={"eps": eps}, params=params), x.shape, 0)

    # -- layout ops -----------------------------------------------------------------------------
    def _batch0(self, node, x, what="operand"):
        if not isinstance(x, Val) or x.batch_axis != 0:
            raise self.err(node, f"{what} must be a runtime tensor with the batch on axis 0", UnsupportedOpError)
        return x

    def _axes(self, node, attrs, rank: int) -> list[int]:
        if self.opset >= 13 and len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in self.const(node, node.input[1], "axes").reshape(-1)]
        else:
            axes = [int(a) for a in self._attr(attrs, "axes", [])]
        axes = sorted(a + rank if a < 0 else a for a in axes)
        if 0 in axes or any(not 0 <= a < rank for a in axes):
            raise self.err(node, f"axes {axes} must be feature axes in 1..{rank - 1} (axis 0 is the batch)",
                           UnsupportedOpError)
        return axes

    def _op_Squeeze(self, node, attrs):
        x = self._batch0(node, self.get(node, node.input[0]))
        full = list(x.full_shape(1))
        axes = self._axes(node, attrs, len(full)) or [k for k in range(1, len(full)) if full[k] == 1]
        if any(full[a] != 1 for a in axes):
            raise self.err(node, f"cannot squeeze axes {axes} of shape {full}: not of size 1")
        shape = tuple(d for k, d in enumerate(full) if k not in axes)[1:]
        return self._shape_op(node, x, (1, *shape), True)

    def _op_Unsqueeze(self, node, attrs):
        x = self._batch0(node, self.get(node, node.input[0]))
        rank = len(x.shape) + 1
        n_new = len(self._attr(attrs, "axes", [])) if self.opset < 13 else \
            int(self.const(node, node.input[1], "axes").size)
        axes = self._axes(node, attrs, rank + n_new)
        shape = list(x.shape)
        for a in axes:
            shape.insert(a - 1, 1)
        return self._shape_op(node, x, (1, *shape), True)

    def _op_Concat(self, node, attrs):
        xs = [self._batch0(node, self.get(node, i)) for i in node.input if i]
        rank = len(xs[0].shape) + 1
        axis = int(self._attr(attrs, "axis", 1))
        axis = axis + rank if axis < 0 else axis
        if not 1 <= axis < rank:
            raise self.err(node, f"attribute axis={axis} must be a feature axis in 1..{rank - 1}", UnsupportedOpError)
        ax = axis - 1
        if any(len(x.shape) != len(xs[0].shape) or x.shape[:ax] + x.shape[ax + 1:] != xs[0].shape[:ax] + xs[0].shape[ax + 1:]
               for x in xs):
            raise self.err(node, f"operand shapes {[list(x.shape) for x in xs]} do not concatenate on axis {axis}")
        shape = list(xs[0].shape)
        shape[ax] = sum(x.shape[ax] for x in xs)
        return Val(self.emit(node, "concat", shape, [x.node for x in xs], attrs={"axis": ax}), tuple(shape), 0)

    def _op_Softmax(self, node, attrs):
        self._nin(node, 1, 1)
        x = self._batch0(node, self.get(node, node.input[0]))
        rank = len(x.shape) + 1
        axis = int(self._attr(attrs, "axis", -1 if self.opset >= 13 else 1))
        axis = axis + rank if axis < 0 else axis
        if not 1 <= axis < rank or (self.opset < 13 and axis != rank - 1):
            raise self.err(node, f"attribute axis={axis}: only a feature axis (and, before opset 13, the last "
                                 "axis) is supported", UnsupportedOpError)
        return Val(self.emit(node, "softmax", x.shape, [x.node], attrs={"axis": axis - 1}), x.shape, 0)

    def _op_Add(self, node, attrs):
        self._nin(node, 2, 2)
        a, b = (self.get(node, i) for i in node.input)
        return self._add(node, a, b, "constant operand")

    def _add(self, node, a, b, what: str):
        if not isinstance(a, Val) and not isinstance(b, Val):
            return a + b
        if isinstance(a, Val) and isinstance(b, Val):
            if a.shape != b.shape or a.batch_axis != b.batch_axis:
                raise self.err(node, f"runtime operands of shapes {list(a.full_shape(1))} and "
                                     f"{list(b.full_shape(1))} differ; only same-shape residual adds are supported",
                               UnsupportedOpError)
            return Val(self.emit(node, "add", a.shape, [a.node, b.node]), a.shape, a.batch_axis)
        x, c = (a, b) if isinstance(a, Val) else (b, a)
        return self._offset(node, x, c, what)

    def _op_Pad(self, node, attrs):
        x = self.get(node, node.input[0])
        if not isinstance(x, Val):
            raise self.err(node, "has no runtime operand")
        mode = self._attr(attrs, "mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if self.opset < 11:
            pads, value = [int(p) for p in self._attr(attrs, "pads", [])], float(self._attr(attrs, "value", 0.0))
        else:
            pads = [int(p) for p in self.const(node, node.input[1], "pads").reshape(-1)]
            value = 0.0
            if len(node.input) > 2 and node.input[2]:
                value = float(np.asarray(self.const(node, node.input[2], "constant_value")).reshape(-1)[0])
            if len(node.input) > 3 and node.input[3]:
                raise self.err(node, "the axes input is not supported", UnsupportedOpError)
        full = x.full_shape(1)
        if mode != "constant" or x.batch_axis != 0 or len(full) != 4 or len(pads) != 8 or min(pads) < 0 \
                or any(pads[k] for k in (0, 1, 4, 5)):
            raise self.err(node, f"only zero-or-constant padding of H and W of an [N, C, H, W] map has a lowering "
                                 f"(mode {mode}, pads {pads})", UnsupportedOpError)
        p4 = [pads[2], pads[3], pads[6], pads[7]]            # [top, left, bottom, right]
        c, h, w = x.shape
        shape = (c, h + p4[0] + p4[2], w + p4[1] + p4[3])
        return Val(self.emit(node, "pad", shape, [x.node], attrs={"pads": p4, "value": value}), shape, 0)

    def _op_Sum(self, node, attrs):
        vals = [self.get(node, i) for i in node.input if i]
        if not vals:
            raise self.err(node, "expected at least one input")
        acc = vals[0]
        for k, v in enumerate(vals[1:], start=1):
            acc = self._add(node, acc, v, f"operand {k}")
        if len(vals) == 1 and isinstance(acc, Val):
            return Val(self.emit(node, "identity", acc.shape, [acc.node]), acc.shape, acc.batch_axis)
        return acc

    def _op_Dropout(self, node, attrs):
        # inference: the identity (a mask output, if any, runs on the host)
        if len(node.output) > 1 and node.output[1] in self.used:
            raise self.err(node, "the mask output is read", UnsupportedOpError)
        return self._identity_of(node, node.input[0])

    def _identity_of(self, node, name: str):
        x = self.get(node, name)
        if not isinstance(x, Val):
            return x
        return Val(self.emit(node, "identity", x.shape, [x.node]), x.shape, x.batch_axis)

    def _scale(self, node, x: Val, c, what: str) -> Val:
        c = self.per_sample(node, check_weights(self.where, self.label(node), what, c), x, what)
        return Val(self.emit(node, "mul_const", x.shape, [x.node], params={"c": c}), x.shape, x.batch_axis)

    def _offset(self, node, x: Val, c, what: str) -> Val:
        c = self.per_sample(node, check_weights(self.where, self.label(node), what, c), x, what)
        return Val(self.emit(node, "add_const", x.shape, [x.node], params={"c": c}), x.shape, x.batch_axis)

    def _op_Mul(self, node, attrs):
        self._nin(node, 2, 2)
        a, b = (self.get(node, i) for i in node.input)
        if isinstance(a, Val) and isinstance(b, Val):
            raise self.err(node, "both operands are runtime tensors (elementwise product)", UnsupportedOpError)
        x, c = (a, b) if isinstance(a, Val) else (b, a)
        return self._scale(node, x, c, "constant factor")

    def _op_Div(self, node, attrs):
        self._nin(node, 2, 2)
        a, b = (self.get(node, i) for i in node.input)
        if not isinstance(a, Val) or isinstance(b, Val):
            raise self.err(node, "only a runtime tensor divided by a constant has a lowering", UnsupportedOpError)
        c = check_weights(self.where, self.label(node), "constant divisor", b)
        if np.any(c == 0):
            raise self.err(node, "constant divisor has zeros")
        return self._scale(node, a, 1.0 / c, "constant divisor")

    def _op_Sub(self, node, attrs):
        self._nin(node, 2, 2)
        a, b = (self.get(node, i) for i in node.input)
        if isinstance(a, Val) and isinstance(b, Val):
            raise self.err(node, "both operands are runtime tensors (difference)", UnsupportedOpError)
        if isinstance(a, Val):
            return self._offset(node, a, -check_weights(self.where, self.label(node), "constant subtrahend", b),
                                "constant subtrahend")
        # c - x = (-1) x + c
        neg = self._scale(node, b, -np.ones(b.full_shape(1)), "negation")
        return self._offset(node, neg, a, "constant minuend")

    def _op_HardSigmoid(self, node, attrs):
        # max(0, min(1, alpha x + beta)): a scale, an offset and a clip, each its own digital step
        self._nin(node, 1, 1)
        x = self.get(node, node.input[0])
        if not isinstance(x, Val):
            raise self.err(node, "has no runtime operand")
        alpha, beta = float(self._attr(attrs, "alpha", 0.2)), float(self._attr(attrs, "beta", 0.5))
        y = self._scale(node, x, np.full(x.full_shape(1), alpha), "alpha")
        y = self._offset(node, y, np.full(x.full_shape(1), beta), "beta")
        return Val(self.emit(node, "act", y.shape, [y.node], attrs={"activation": {"kind": "clip", "lo": 0.0, "hi": 1.0}}),
                   y.shape, y.batch_axis)

    def _weight(self, node, k: int, v) -> np.ndarray:
        """The constant operand ``k`` of a Gemm/MatMul, checked before any transposition."""
        return check_weights(self.where, self.label(node), f"weight '{node.input[k]}'", v)

    def _dense(self, node, x: Val, W: np.ndarray, bias, out_axis: int | None) -> Val:
        """``y = W x + b`` over the last axis of ``x``; leading per-sample axes (tokens of an
        ``[N, T, K]`` input) each read the same crossbar, like the positions of a convolution."""
        m = W.shape[0]
        shape = tuple(x.shape[:-1]) + (m,)
        b = np.zeros(m) if bias is None else self.per_sample(node, bias, Val("", (m,), out_axis), "bias C")
        name = self.emit(node, "dense", shape, [x.node], attrs={"activation": dict(K.NO_ACT)}, params={"W": W, "b": b})
        return Val(name, shape, out_axis)

    def _need_vector(self, node, x: Val, batch_axis, role: str):
        if len(x.shape) != 1 or x.batch_axis != batch_axis:
            want = "[N, K]" if batch_axis == 0 else "[K, N]" if batch_axis == 1 else "[K]"
            raise self.err(node, f"{role} has per-sample shape {list(x.shape)} with batch axis "
                                 f"{x.batch_axis}; this form needs it laid out as {want} "
                                 "(declare the batch dimension symbolic to place it)", UnsupportedOpError)

    def _op_Gemm(self, node, attrs):
        self._nin(node, 2, 3)
        alpha = float(self._attr(attrs, "alpha", 1.0))
        beta = float(self._attr(attrs, "beta", 1.0))
        ta, tb = int(self._attr(attrs, "transA", 0)), int(self._attr(attrs, "transB", 0))
        A, B = self.get(node, node.input[0]), self.get(node, node.input[1])
        C = self.const(node, node.input[2], "bias C") if len(node.input) > 2 and node.input[2] else None
        bias = None if C is None else beta * check_weights(self.where, self.label(node), f"bias '{node.input[2]}'", C)
        if not isinstance(A, Val) and not isinstance(B, Val):
            A2, B2 = (A.T if ta else A), (B.T if tb else B)
            return alpha * (A2 @ B2) + (0 if bias is None else bias)
        if isinstance(A, Val) and isinstance(B, Val):
            raise self.err(node, "both operands are runtime tensors; one must be a weight initializer",
                           UnsupportedOpError)
        if isinstance(A, Val) and A.batch_axis is None and not ta and len(A.shape) == 2:
            # a per-sample matrix (a model defined at batch 1 only, after a host node run one sample
            # at a time): each of its rows reads the same crossbar, like the tokens of a MatMul
            B = self._weight(node, 1, B)
            Bp = B.T if tb else B
            if Bp.ndim != 2 or Bp.shape[0] != A.shape[1]:
                raise self.err(node, f"weight B{'^T' if tb else ''} has shape {list(Bp.shape)}, "
                                     f"expected [{A.shape[1]}, M] to match {A.shape[1]} input features")
            return self._dense(node, A, alpha * Bp.T, bias, None)
        if isinstance(A, Val):
            # Y[N,M] = A'[N,K] B'[K,M]: per sample y = (alpha B')^T x
            self._need_vector(node, A, 1 if ta else 0, "operand A")
            B = self._weight(node, 1, B)
            Bp = B.T if tb else B
            if Bp.ndim != 2 or Bp.shape[0] != A.shape[0]:
                raise self.err(node, f"weight B{'^T' if tb else ''} has shape {list(Bp.shape)}, "
                                     f"expected [{A.shape[0]}, M] to match {A.shape[0]} input features")
            return self._dense(node, A, alpha * Bp.T, bias, 0)
        # Y[M,N] = A'[M,K] B'[K,N]: per sample (a column) y = alpha A' x
        self._need_vector(node, B, 0 if tb else 1, "operand B")
        A = self._weight(node, 0, A)
        Ap = A.T if ta else A
        if Ap.ndim != 2 or Ap.shape[1] != B.shape[0]:
            raise self.err(node, f"weight A{'^T' if ta else ''} has shape {list(Ap.shape)}, "
                                 f"expected [M, {B.shape[0]}] to match {B.shape[0]} input features")
        return self._dense(node, B, alpha * Ap, bias, 1)

    def _op_MatMul(self, node, attrs):
        self._nin(node, 2, 2)
        A, B = (self.get(node, i) for i in node.input)
        if not isinstance(A, Val) and not isinstance(B, Val):
            return np.matmul(A, B)
        if isinstance(A, Val) and isinstance(B, Val):
            raise self.err(node, "both operands are runtime tensors; one must be a weight initializer",
                           UnsupportedOpError)
        if isinstance(A, Val):
            if len(A.shape) > 1 and (A.batch_axis == 0 or (A.batch_axis is None and self.batch_one)):
                # [N, T.., K] @ [K, M]: per token (bias, if any, comes from a following Add); a
                # per-sample [T.., K] of a model defined at batch 1 only likewise
                Bm = self._weight(node, 1, B)
                if Bm.ndim != 2 or Bm.shape[0] != A.shape[-1]:
                    raise self.err(node, f"weight B has shape {list(Bm.shape)}, expected [{A.shape[-1]}, M] for "
                                         f"the per-token product of an operand of per-sample shape {list(A.shape)}",
                                   UnsupportedOpError)
                return self._dense(node, A, Bm.T, None, A.batch_axis)
            self._need_vector(node, A, A.batch_axis if A.batch_axis in (0, None) else 0, "operand A")
            Bm = self._weight(node, 1, B)
            if Bm.ndim != 2 or Bm.shape[0] != A.shape[0]:
                raise self.err(node, f"weight B has shape {list(Bm.shape)}, expected [{A.shape[0]}, M]")
            return self._dense(node, A, Bm.T, None, A.batch_axis)
        self._need_vector(node, B, 1, "operand B")
        Am = self._weight(node, 0, A)
        if Am.ndim != 2 or Am.shape[1] != B.shape[0]:
            raise self.err(node, f"weight A has shape {list(Am.shape)}, expected [M, {B.shape[0]}]")
        return self._dense(node, B, Am, None, 1)

    def _shape_op(self, node, x: Val, full_out: tuple[int, ...], keeps_batch: bool) -> Val:
        if x.batch_axis is None:
            shape, axis = tuple(full_out), None
        else:
            shape, axis = tuple(full_out[1:]), 0
        if not shape or int(np.prod(shape)) != int(np.prod(x.shape)) or not keeps_batch:
            raise self.err(node, f"reshaping per-sample shape {list(x.shape)} to {list(full_out)} would mix "
                                 "the batch axis into the features; only per-sample reshapes are supported",
                           UnsupportedOpError)
        return Val(self.emit(node, "reshape", shape, [x.node]), shape, axis)

    def _op_Flatten(self, node, attrs):
        self._nin(node, 1, 1)
        x = self.get(node, node.input[0])
        full = x.full_shape(1) if isinstance(x, Val) else x.shape
        axis = int(self._attr(attrs, "axis", 1))
        if axis < 0:
            axis += len(full)
        if not 0 <= axis <= len(full):
            raise self.err(node, f"attribute axis={axis} is out of range for rank {len(full)}")
        out = (int(np.prod(full[:axis])), int(np.prod(full[axis:])))
        if not isinstance(x, Val):
            return x.reshape(out)
        if x.batch_axis not in (None, 0):
            raise self.err(node, f"the operand's batch is on axis {x.batch_axis}; Flatten needs it on axis 0",
                           UnsupportedOpError)
        keeps = x.batch_axis is None or axis == 1
        return self._shape_op(node, x, out if x.batch_axis is None else (1, out[1]), keeps)

    def _op_Reshape(self, node, attrs):
        self._nin(node, 2, 2)
        x = self.get(node, node.input[0])
        target = [int(t) for t in self.const(node, node.input[1], "shape").reshape(-1)]
        allowzero = int(self._attr(attrs, "allowzero", 0))
        if not isinstance(x, Val):
            return x.reshape([x.shape[i] if t == 0 and not allowzero else t for i, t in enumerate(target)])
        if x.batch_axis not in (None, 0):
            raise self.err(node, f"the operand's batch is on axis {x.batch_axis}; Reshape needs it on axis 0",
                           UnsupportedOpError)
        if x.batch_axis is None:
            src, tgt = list(x.shape), target
        else:
            src, tgt = list(x.shape), target[1:]
            if not target or (target[0] == 0 and allowzero) or (target[0] == -1 and -1 in tgt):
                return self._shape_op(node, x, tuple(target), False)
        resolved = []
        for i, t in enumerate(tgt):
            off = 0 if x.batch_axis is None else 1
            if t == 0 and not allowzero:
                if i + off >= len(x.full_shape(1)):
                    raise self.err(node, f"shape entry {i + off} is 0 but the input has no such axis")
                t = x.full_shape(1)[i + off]
            resolved.append(t)
        if resolved.count(-1) > 1 or any(t < -1 for t in resolved):
            raise self.err(node, f"invalid target shape {target}")
        if -1 in resolved:
            known = int(np.prod([t for t in resolved if t != -1]))
            if known == 0 or int(np.prod(src)) % known:
                raise self.err(node, f"cannot infer -1 in {target} from per-sample shape {src}")
            resolved[resolved.index(-1)] = int(np.prod(src)) // known
        full = tuple(resolved) if x.batch_axis is None else (1, *resolved)
        return self._shape_op(node, x, full, True)


def onnx_to_ir(data: bytes, path: Path) -> IR:
    import onnx
    from google.protobuf.message import DecodeError

    where = str(path)
    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as e:
        raise InputError(where, f"not an ONNX model (protobuf decode failed: {e})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise InputError(where, "not an ONNX model (no ir_version or no graph nodes; truncated or another format?)")
    external = load_external_data(model, path)
    if model.functions:
        # the dynamo exporter writes modules as local functions: onnx's inliner expands them
        import onnx.inliner

        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:  # noqa: BLE001 - the inliner raises RuntimeError and friends
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise InputError(where, f"cannot inline the model's local functions: {first}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - ValidationError and friends
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(where, f"invalid ONNX model: {first}") from None
    _check_names_and_types(model, where)
    ir = _Lowering(fold_constants(model, where), path).run()
    if external:
        ir.g.graph["external_data"] = external
    return ir


_ELEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def _external_tensors(model):
    """Every tensor of the model (initializers, Constant attributes, also in subgraphs and functions)
    whose data lives in an external file."""
    import onnx

    def in_graph(g):
        for t in g.initializer:
            yield t
        for node in g.node:
            yield from in_nodes([node])

    def in_nodes(nodes):
        for node in nodes:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t
                elif a.type == onnx.AttributeProto.TENSORS:
                    yield from a.tensors
                elif a.type == onnx.AttributeProto.GRAPH:
                    yield from in_graph(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for g in a.graphs:
                        yield from in_graph(g)

    tensors = list(in_graph(model.graph))
    for f in model.functions:
        tensors += list(in_nodes(f.node))
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def load_external_data(model, path: Path) -> list[str]:
    """Load the tensors a model keeps in external files (``torch.onnx.export(..., external_data=True)``
    and the dynamo exporter write ``model.onnx.data``), each checked first by
    :func:`check_external_data`. Returns the files' paths relative to the model's folder, sorted
    (the compiled design copies them next to its copy of the source)."""
    from onnx.external_data_helper import load_external_data_for_model

    files = check_external_data(model, path)
    if not files:
        return []
    try:
        load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as e:
        raise InputError(str(path), f"cannot read the model's external data: {e}") from None
    return files


def check_external_data(model, path: Path) -> list[str]:
    """Each external tensor's ``location`` must name a file inside the model's folder (a subfolder is
    fine), present, and long enough for ``offset + length`` (or for the tensor's own size); returns
    the files, relative to the model's folder."""
    where = str(path)
    tensors = _external_tensors(model)
    if not tensors:
        return []
    base = path.parent.resolve()
    files: dict[str, int] = {}
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        what = f"tensor '{t.name}': external data file {loc!r}"
        target = (path.parent / loc).resolve() if loc and "\0" not in loc else None
        if target is None or Path(loc).is_absolute() or base not in target.parents:
            raise InputError(where, f"{what} is not a file inside the model's folder {path.parent}")
        if not target.is_file():
            raise InputError(where, f"{what} is missing (expected at {path.parent / loc}; keep the .onnx.data file "
                                    "next to the model, as the exporter wrote it)")
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else \
                int(np.prod(list(t.dims), dtype=np.int64)) * _ELEM_BYTES.get(t.data_type, 1)
        except ValueError:
            raise InputError(where, f"{what}: offset or length is not an integer") from None
        size = files.setdefault(loc, target.stat().st_size)
        if offset < 0 or length < 0 or offset + length > size:
            raise InputError(where, f"{what} is truncated: the tensor needs bytes {offset}..{offset + length}, the "
                                    f"file has {size}")
    return sorted(files)


def _check_names_and_types(model, where: str) -> None:
    """What onnx's checker lets through and onnxruntime refuses: two nodes of one name, and a tensor
    of a type its operator does not take (an int64 or bool weight fed to Gemm). The latter comes from
    onnx's strict type inference; its other complaints (shapes it cannot resolve) are not refusals."""
    import onnx

    seen = set()
    for node in model.graph.node:
        if node.name and node.name in seen:
            raise InputError(where, f"node name '{node.name}' is used by two nodes; ONNX requires unique node names "
                                    "(onnxruntime refuses the model)")
        seen.add(node.name)
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:  # noqa: BLE001 - InferenceError and friends
        first = (str(e).strip().splitlines() or [""])[0]
        if " type" in first and "ShapeInferenceError" in first:
            raise InputError(where, f"a tensor has a type its operator does not take: {first}") from None
