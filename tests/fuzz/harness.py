"""The fuzz harness: generated inputs for every front end and numeric option, each run through the
real CLI (``compiler.cli.main``) in a forked child under a memory limit and a time limit.

A case passes when the command succeeds (exit 0, and a compiled folder that ``load_compiled``
accepts) or refuses in one line (exit 2, ``error: ...``), with no traceback, no hang and nothing
left behind in its folder. The parent never runs amsc itself (no onnxruntime thread pool exists
before a fork), so each child starts as a fresh command would.

Mutations (hypothesis draws them, so a failure shrinks to a small reproducer):
- ONNX: attribute values, graph input and output dimensions, initializer values, dtypes and
  shapes, operator types, dropped nodes, duplicate names, rewired inputs, the opset, and raw bytes
  (flips, truncation) of small base models (a dense net and a conv net);
- YAML graphs and amsc_dynamics models: any leaf replaced, keys dropped or added, and text edits
  (brackets, anchors, aliases, tags, huge numbers);
- numeric options of compile, verify and evaluate from pools of hostile strings.
"""

from __future__ import annotations

import math
import os
import resource
import select
import signal
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import yaml
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

#: each case's limits: address space (the probe's 7.45 GiB allocation must fail here) and seconds
MEMORY_BYTES = 4 << 30
TIMEOUT_S = 120.0
LAST_CODE: object = None
#: what a command may leave in its case folder besides the inputs the case wrote
OUTPUT = "o"


def run_case(argv: list[str], timeout: float = TIMEOUT_S, memory: int = MEMORY_BYTES) -> tuple[object, str]:
    """``compiler.cli.main(argv)`` in a forked child: ``(exit code or 'hang' or 'killed N', stderr)``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: limits, stderr into the pipe, the CLI, and out without clean-up handlers
        code = 3
        try:
            os.close(r)
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.dup2(w, 2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            from compiler import cli

            code = cli.main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:  # noqa: BLE001 - a traceback is exactly what the fuzz looks for
            import traceback

            traceback.print_exc()
            code = 97
        finally:
            try:
                sys.stderr.flush()
            finally:
                os._exit(code if isinstance(code, int) else 3)
    os.close(w)
    chunks, deadline, status = [], time.monotonic() + timeout, None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = "hang"
            break
        ready, _, _ = select.select([r], [], [], min(left, 1.0))
        if ready:
            data = os.read(r, 1 << 16)
            if data:
                chunks.append(data)
                continue
            _, st_ = os.waitpid(pid, 0)
            status = os.WEXITSTATUS(st_) if os.WIFEXITED(st_) else f"killed {os.WTERMSIG(st_)}"
            break
    os.close(r)
    return status, b"".join(chunks).decode(errors="replace")


def check_case(argv: list[str], folder: Path, inputs: set[str], codes=(0, 2)) -> str | None:
    """Run a case; None if it passed, else what was wrong (one line). The exit code is kept in
    ``LAST_CODE`` (the tally counts how many cases succeeded and how many were refused)."""
    global LAST_CODE
    from compiler.design import load_compiled
    from compiler.errors import AmscError

    code, err = run_case(argv)
    LAST_CODE = code
    lines = err.strip().splitlines()
    if "Traceback" in err or code not in codes:
        return f"exit {code}: {' | '.join(lines[-3:])[:400]}"
    if code == 2 and not (len(lines) == 1 and lines[0].startswith("error: ")):
        return f"exit 2 without one 'error:' line: {' | '.join(lines)[:400]}"
    left = sorted(p.name for p in folder.iterdir() if p.name not in inputs and p.name != OUTPUT)
    if left:
        return f"left behind: {left}"
    out = folder / OUTPUT
    if argv[0] == "compile":
        if code == 0:
            try:
                load_compiled(out)
            except AmscError as e:
                return f"compiled folder does not load: {e}"
        elif out.exists():
            return "a refused compile wrote its output folder"
    return None


# ------------------------------------------------------------------ base models

def dense_model() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], name="fc2", transB=1, alpha=1.0)]
    inits = {"W1": rng.normal(size=(8, 16)), "b1": rng.normal(size=8), "W2": rng.normal(size=(4, 8)),
             "b2": rng.normal(size=4)}
    return _model(nodes, ("x", ["N", 16]), ("y", ["N", 4]), inits)


def conv_model() -> onnx.ModelProto:
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Conv", ["x", "K", "kb"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              strides=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "W", "b"], ["y"], name="fc", transB=1)]
    inits = {"K": rng.normal(size=(4, 1, 3, 3)), "kb": rng.normal(size=4), "W": rng.normal(size=(3, 64)),
             "b": rng.normal(size=3)}
    return _model(nodes, ("x", ["N", 1, 8, 8]), ("y", ["N", 3]), inits)


def _model(nodes, inp, out, inits) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info(inp[0], TensorProto.FLOAT, inp[1])],
                          [helper.make_tensor_value_info(out[0], TensorProto.FLOAT, out[1])],
                          initializer=[numpy_helper.from_array(np.asarray(a, np.float32), k) for k, a in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


GRAPH_YAML = {
    "amsc_graph": 1, "name": "fuzz",
    "inputs": [{"name": "x", "shape": [6]}],
    "nodes": [{"name": "fc1", "op": "dense", "weight": [[0.5, -0.25, 0.1, 0.0, 0.3, -0.2]] * 4,
               "bias": [0.1, 0.0, -0.1, 0.2], "activation": "relu"},
              {"name": "fc2", "op": "dense", "weight": [[1.0, -1.0, 0.5, 0.25], [0.2, 0.3, -0.4, 0.1]]}],
    "outputs": ["fc2"],
}

DYNAMICS_YAML = {
    "amsc_dynamics": 1, "name": "fuzzdyn", "states": 2, "tau": [1.0, 1.0], "activation": "tanh",
    "W": [[0.5, -1.0], [1.0, 0.5]], "b": [0.0, 0.1], "x0": [0.3, -0.2], "t_end": 5.0,
}


# ------------------------------------------------------------------ value pools

INTS = [-(1 << 40), -1, 0, 1, 2, 3, 7, 64, 4097, 1 << 31, 1 << 62]
FLOATS = [math.nan, math.inf, -math.inf, -1e300, -1.0, 0.0, 1e-300, 0.5, 1.0, 3e38, 1e300]
LEAVES = INTS + FLOATS + [None, True, "", "abc", "../../etc/passwd", [], {}, [[]], [1, [2, [3]]],
                          {"file": "../x.npy"}, {"file": "nope.npy"}, "x" * 300]
OPS = ["Relu", "Gemm", "Conv", "MaxPool", "AveragePool", "Add", "Mul", "Reshape", "Softmax", "LSTM", "Foo",
       "ConvTranspose", "Resize", "Identity", "", "Slice", "Split", "Gather", "Concat", "Transpose", "Squeeze",
       "Unsqueeze", "Expand", "DepthToSpace", "SpaceToDepth", "Sigmoid", "ReduceMean"]
DTYPES = [np.int64, np.float16, np.bool_, np.uint8, np.float64, np.int32]
OPTION_VALUES = ["0", "-1", "1", "2", "3", "8", "16", "24", "25", "64", "4097", "1e309", "-inf", "inf", "nan",
                 "abc", "", "0.5", "1e-9", "64x64", "0x0", "3x5", "99999999999999999999"]
SNIPPETS = ["[" * 200, "]", "*undefined", "&a [*a]", ": :", "\t", "!!python/object/apply:os.system ['true']",
            "1e400", "{", "- - -", "? ", "!!binary AAAA", "\x00", "'", "&a x\nb: *a"]


# ------------------------------------------------------------------ mutations

def _set_attr(a, data) -> None:
    if a.type == onnx.AttributeProto.INT:
        a.i = data.draw(st.sampled_from(INTS))
    elif a.type == onnx.AttributeProto.INTS:
        a.ClearField("ints")
        a.ints.extend(data.draw(st.lists(st.sampled_from(INTS), max_size=6)))
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = data.draw(st.sampled_from(FLOATS))
    elif a.type == onnx.AttributeProto.STRING:
        a.s = data.draw(st.sampled_from([b"", b"NOTSET", b"SAME_UPPER", b"VALID", b"junk"]))


def mutate_onnx(m: onnx.ModelProto, data) -> bytes:
    g = m.graph
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        kind = data.draw(st.sampled_from(["attr", "dim", "init_value", "init_dtype", "init_shape", "op", "drop",
                                          "dup_name", "rewire", "opset", "add_attr"]), label="kind")
        nodes = list(g.node)
        if kind == "attr":
            with_attrs = [n for n in nodes if n.attribute]
            if with_attrs:
                n = data.draw(st.sampled_from(with_attrs))
                _set_attr(data.draw(st.sampled_from(list(n.attribute))), data)
        elif kind == "add_attr" and nodes:
            n = data.draw(st.sampled_from(nodes))
            n.attribute.append(helper.make_attribute(data.draw(st.sampled_from(
                ["ceil_mode", "group", "dilations", "axis", "transA", "count_include_pad", "junk"])),
                data.draw(st.sampled_from([0, 1, 2, -1, [1, 1], [2, 2, 2]]))))
        elif kind == "dim":
            vi = data.draw(st.sampled_from(list(g.input) + list(g.output)))
            dims = vi.type.tensor_type.shape.dim
            if len(dims):
                d = dims[data.draw(st.integers(0, len(dims) - 1))]
                choice = data.draw(st.sampled_from(["0", "1", "2", "7", "big", "N", "M", "clear"]))
                if choice in ("N", "M"):
                    d.dim_param = choice
                elif choice == "clear":
                    d.Clear()
                else:
                    d.dim_value = 1 << 40 if choice == "big" else int(choice)
        elif kind.startswith("init") and len(g.initializer):
            k = data.draw(st.integers(0, len(g.initializer) - 1))
            t = g.initializer[k]
            a = numpy_helper.to_array(t).astype(np.float64)
            if kind == "init_value" and a.size:
                a.reshape(-1)[data.draw(st.integers(0, a.size - 1))] = data.draw(st.sampled_from(FLOATS))
                a = a.astype(np.float32)
            elif kind == "init_dtype":
                with np.errstate(all="ignore"):
                    a = a.astype(data.draw(st.sampled_from(DTYPES)))
            else:
                a = a.reshape(-1)[: data.draw(st.integers(0, a.size))].astype(np.float32)
            g.initializer[k].CopyFrom(numpy_helper.from_array(a, t.name))
        elif kind == "op" and nodes:
            data.draw(st.sampled_from(nodes)).op_type = data.draw(st.sampled_from(OPS))
        elif kind == "drop" and nodes:
            del g.node[data.draw(st.integers(0, len(nodes) - 1))]
        elif kind == "dup_name" and len(nodes) > 1:
            g.node[1].name = g.node[0].name
        elif kind == "rewire" and nodes:
            n = data.draw(st.sampled_from(nodes))
            if n.input:
                names = [v for nd in nodes for v in nd.output] + ["x", "nope", ""]
                n.input[data.draw(st.integers(0, len(n.input) - 1))] = data.draw(st.sampled_from(names))
        elif kind == "opset":
            m.opset_import[0].version = data.draw(st.sampled_from([1, 6, 7, 11, 17, 21, 22, 99]))
    raw = m.SerializeToString()
    if data.draw(st.booleans(), label="bytes"):
        raw = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()):
            raw = raw[: data.draw(st.integers(0, len(raw)))]
        raw = bytes(raw)
    return raw


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def mutate_yaml(doc: dict, data) -> str:
    import copy

    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _paths(doc) if p]
        p = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for k in p[:-1]:
            parent = parent[k]
        kind = data.draw(st.sampled_from(["replace", "drop", "add"]), label="kind")
        if kind == "replace":
            # a copy: a later mutation of this case must not edit LEAVES' lists and dicts, which the
            # next case (and hypothesis replaying this one) draws again
            parent[p[-1]] = copy.deepcopy(data.draw(st.sampled_from(LEAVES)))
        elif kind == "drop":
            del parent[p[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["zz", "file", "shape", "op", "activation"]))] = \
                copy.deepcopy(data.draw(st.sampled_from(LEAVES)))
        if not isinstance(doc, dict) or not doc:
            break
    text = yaml.safe_dump(doc, sort_keys=False) if isinstance(doc, dict) else "{}\n"
    if data.draw(st.booleans(), label="text"):
        i = data.draw(st.integers(0, len(text)))
        text = text[:i] + data.draw(st.sampled_from(SNIPPETS)) + text[i:]
    return text
