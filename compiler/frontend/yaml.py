"""YAML graph front end. The schema is documented in ``docs/yaml-graph.md``.

Weights are inline nested lists, or ``{file: name.npy}`` / ``{file: name.npz, key: array}`` relative
to the YAML file's folder (never outside it). Files are read with ``yaml.SafeLoader`` (with the depth and
alias-expansion limits of ``common.load_yaml``) and
``numpy.load(allow_pickle=False)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, UnsupportedOpError
from ..ir import IR
from ..ir.names import Namer
from .common import NPY_ERRORS, check_weights, load_yaml

SCHEMA_VERSION = 1
YAML_OPS = ("dense", "flatten", "identity", "relu", "reshape", "sigmoid", "tanh")
_ACTS = ("none", "relu", "sigmoid", "tanh")
_NODE_KEYS = {
    "dense": {"name", "op", "inputs", "weight", "bias", "activation"},
    "flatten": {"name", "op", "inputs"},
    "identity": {"name", "op", "inputs"},
    "relu": {"name", "op", "inputs"},
    "sigmoid": {"name", "op", "inputs"},
    "tanh": {"name", "op", "inputs"},
    "reshape": {"name", "op", "inputs", "shape"},
}
_TOP_KEYS = {"amsc_graph", "name", "inputs", "nodes", "outputs"}


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.where = str(path)
        self._npz: dict[Path, object] = {}

    def fail(self, field: str, what: str):
        return InputError(self.where, f"{field}: {what}")

    def mapping(self, obj, field: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(obj, dict):
            raise self.fail(field, f"expected a mapping, got {type(obj).__name__}")
        unknown = sorted(str(k) for k in obj if k not in allowed)
        if unknown:
            raise self.fail(field, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        missing = sorted(required - set(obj))
        if missing:
            raise self.fail(field, f"missing required key(s) {missing}")
        return obj

    def name(self, obj, field: str) -> str:
        if not isinstance(obj, str) or not obj:
            raise self.fail(field, f"expected a non-empty string, got {obj!r}")
        return obj

    def shape(self, obj, field: str) -> tuple[int, ...]:
        if (not isinstance(obj, list) or not obj
                or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in obj)):
            raise self.fail(field, f"expected a list of positive integers, got {obj!r}")
        return tuple(obj)

    def array(self, obj, field: str, node: str) -> np.ndarray:
        if isinstance(obj, dict):
            spec = self.mapping(obj, field, {"file", "key"}, {"file"})
            rel = self.name(spec["file"], f"{field}.file")
            base = self.path.parent.resolve()
            target = (base / rel).resolve()
            if Path(rel).is_absolute() or base not in target.parents:
                raise self.fail(f"{field}.file", f"'{rel}' must be a relative path inside {base}")
            if not target.is_file():
                raise self.fail(f"{field}.file", f"no such file '{rel}' next to the YAML")
            try:
                if target.suffix == ".npz":
                    if "key" not in spec:
                        raise self.fail(field, f"'{rel}' is an .npz archive: give 'key'")
                    if target not in self._npz:
                        self._npz[target] = np.load(target, allow_pickle=False)
                    z = self._npz[target]
                    key = self.name(spec["key"], f"{field}.key")
                    if key not in z.files:
                        raise self.fail(f"{field}.key", f"'{key}' not in {rel}; it has {sorted(z.files)}")
                    arr = z[key]
                elif target.suffix == ".npy":
                    arr = np.load(target, allow_pickle=False)
                else:
                    raise self.fail(f"{field}.file", f"'{rel}' must be .npy or .npz")
            except NPY_ERRORS as e:
                raise self.fail(f"{field}.file", f"cannot read '{rel}': {e}") from None
        else:
            try:
                arr = np.array(obj, dtype=np.float64)
            except (TypeError, ValueError):
                raise self.fail(field, "expected a (nested) list of numbers of rectangular shape") from None
        return check_weights(self.where, node, field, arr)


def yaml_to_ir(data: bytes, path: Path) -> IR:
    r = _Reader(path)
    doc = load_yaml(data, r.where)
    if not isinstance(doc, dict):
        raise InputError(r.where, f"expected a YAML mapping at the top level, got {type(doc).__name__}")
    r.mapping(doc, "top level", _TOP_KEYS, {"amsc_graph", "inputs", "nodes", "outputs"})
    if doc["amsc_graph"] != SCHEMA_VERSION:
        raise r.fail("amsc_graph", f"schema version {doc['amsc_graph']!r} is not supported (expected 1)")
    gname = doc.get("name", path.stem)
    ir = IR(r.name(gname, "name") if "name" in doc else path.stem, source=str(path))
    namer = Namer()
    env: dict[str, str] = {}  # yaml name -> IR node

    if not isinstance(doc["inputs"], list) or not doc["inputs"]:
        raise r.fail("inputs", "expected a non-empty list")
    for i, spec in enumerate(doc["inputs"]):
        f = f"inputs[{i}]"
        r.mapping(spec, f, {"name", "shape"}, {"name", "shape"})
        nm = r.name(spec["name"], f"{f}.name")
        if nm in env:
            raise r.fail(f"{f}.name", f"duplicate name '{nm}'")
        env[nm] = ir.add(namer.fresh(nm), "input", r.shape(spec["shape"], f"{f}.shape"),
                         attrs={"batch_axis": 0}, origin=nm)

    if not isinstance(doc["nodes"], list) or not doc["nodes"]:
        raise r.fail("nodes", "expected a non-empty list")
    prev = next(iter(env.values())) if len(env) == 1 else None
    for i, spec in enumerate(doc["nodes"]):
        f = f"nodes[{i}]"
        if not isinstance(spec, dict):
            raise r.fail(f, f"expected a mapping, got {type(spec).__name__}")
        op = spec.get("op")
        if op not in YAML_OPS:
            raise UnsupportedOpError(r.where, f"{f}: unsupported op {op!r}; supported: {', '.join(YAML_OPS)}")
        r.mapping(spec, f, _NODE_KEYS[op], {"name", "op"})
        nm = r.name(spec["name"], f"{f}.name")
        f = f"node '{nm}'"
        if nm in env:
            raise r.fail(f"{f}.name", f"duplicate name '{nm}'")
        if "inputs" in spec:
            ins = spec["inputs"]
            if not isinstance(ins, list) or len(ins) != 1:
                raise r.fail(f"{f}.inputs", "expected a list with exactly one name")
            src_name = r.name(ins[0], f"{f}.inputs[0]")
            if src_name not in env:
                raise r.fail(f"{f}.inputs", f"'{src_name}' is not defined before this node")
            src = env[src_name]
        elif prev is None:
            raise r.fail(f"{f}.inputs", "required (several inputs: which one feeds this node?)")
        else:
            src = prev
        in_shape = ir.g.nodes[src]["shape"]
        node = namer.fresh(nm)
        if op == "dense":
            if "weight" not in spec:
                raise r.fail(f, "op 'dense' needs 'weight' ([out, in])")
            W = r.array(spec["weight"], f"{f}.weight", nm)
            if W.ndim != 2 or in_shape != (W.shape[1],):
                raise r.fail(f"{f}.weight", f"shape {list(W.shape)} does not fit the input shape "
                                            f"{list(in_shape)}: expected [out, {int(np.prod(in_shape))}] "
                                            "on a 1-D input")
            b = r.array(spec["bias"], f"{f}.bias", nm) if "bias" in spec else np.zeros(W.shape[0])
            if b.shape != (W.shape[0],):
                raise r.fail(f"{f}.bias", f"shape {list(b.shape)}, expected [{W.shape[0]}]")
            act = spec.get("activation", "none")
            if act not in _ACTS:
                raise r.fail(f"{f}.activation", f"{act!r}; expected one of {', '.join(_ACTS)}")
            ir.add(node, "dense", (W.shape[0],), [src], attrs={"activation": {"kind": act}},
                   params={"W": W, "b": b}, origin=nm)
        elif op == "identity":
            ir.add(node, op, in_shape, [src], origin=nm)
        elif op in _ACTS:
            ir.add(node, "act", in_shape, [src], attrs={"activation": {"kind": op}}, origin=nm)
        elif op == "flatten":
            ir.add(node, "reshape", (int(np.prod(in_shape)),), [src], origin=nm)
        elif op == "reshape":
            if "shape" not in spec:
                raise r.fail(f, "op 'reshape' needs 'shape' (per sample)")
            shp = r.shape(spec["shape"], f"{f}.shape")
            if int(np.prod(shp)) != int(np.prod(in_shape)):
                raise r.fail(f"{f}.shape", f"{list(shp)} has a different size than the input {list(in_shape)}")
            ir.add(node, "reshape", shp, [src], origin=nm)
        env[nm] = prev = node

    outs = doc["outputs"]
    if not isinstance(outs, list) or not outs:
        raise r.fail("outputs", "expected a non-empty list of node names")
    for i, o in enumerate(outs):
        o = r.name(o, f"outputs[{i}]")
        if o not in env:
            raise r.fail(f"outputs[{i}]", f"'{o}' is not a node or input")
        src = env[o]
        ir.add(namer.fresh(f"{o}_out"), "output", ir.g.nodes[src]["shape"], [src],
               attrs={"batch_axis": 0}, origin=o)
    return ir
