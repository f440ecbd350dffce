"""Helpers shared by the front ends."""

from __future__ import annotations

import zipfile

import numpy as np

from ..errors import InputError

#: A weight matrix larger than this is refused (128 Mi elements = 1 GiB of float64; VGG-19's fc6 has 103 M).
MAX_WEIGHT_ELEMENTS = 128 * 1024 * 1024
#: YAML limits, checked before anything is built from the document: nesting depth, and the number of
#: nodes once every alias is expanded (an 'alias bomb' of a few lines expands to 10^9 list entries);
#: 16 M is a 4000 x 4000 inline matrix -- larger weights belong in a {file: ...} .npy.
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 16 * 1024 * 1024
#: The largest weight or bias magnitude: float32's range (onnxruntime's float) less the headroom that
#: the scales and sums of a layer need (a weight times an input range, summed over 2^20 rows, stays finite).
MAX_MAGNITUDE = 1e30


def check_weights(where: str, node: str, what: str, a: np.ndarray) -> np.ndarray:
    """Finite float64 array, or a one-line error naming the node and the tensor."""
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(where, f"node '{node}': {what} is not numeric") from None
    if a.size > MAX_WEIGHT_ELEMENTS:
        raise InputError(where, f"node '{node}': {what} has {a.size} elements; "
                                f"the limit is {MAX_WEIGHT_ELEMENTS}")
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(where, f"node '{node}': {what} has {int(bad.sum())} NaN/Inf value(s), "
                                f"first at index {list(idx)}")
    big = np.abs(a) > MAX_MAGNITUDE
    if big.any():
        idx = tuple(int(i) for i in np.argwhere(big)[0])
        raise InputError(where, f"node '{node}': {what} has {int(big.sum())} value(s) beyond +-{MAX_MAGNITUDE:.3g}, "
                                f"first {a[idx]:.3g} at index {list(idx)}; the chip's float reference (onnxruntime, "
                                "float32) and its fixed-point scales cannot represent them")
    return a


#: what reading a user's .npy / .npz can raise besides a missing file: an empty or truncated file,
#: a bad header or pickled data, an archive's signature on something that is not one
NPY_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def load_npy(path, what: str) -> np.ndarray:
    """A numeric .npy array, or a one-line error naming the file."""
    from pathlib import Path

    try:
        x = np.load(Path(path), allow_pickle=False)
    except EOFError:
        raise InputError(path, f"cannot read {what}: the file is empty or truncated") from None
    except zipfile.BadZipFile:   # the zip archive's signature, not an archive: not a .npy either
        raise InputError(path, f"cannot read {what}: a damaged .npz archive, not a .npy array") from None
    except (OSError, ValueError) as e:
        raise InputError(path, f"cannot read {what}: {e}") from None
    if isinstance(x, np.lib.npyio.NpzFile):
        x.close()
        raise InputError(path, f"{what} must be a numeric .npy array, not an .npz archive (save one array "
                               "with np.save)")
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
        raise InputError(path, f"{what} must be a numeric .npy array")
    return x


def load_floats(path, what: str) -> np.ndarray:
    """A non-empty .npy array of float32 or float64 with finite values, as float64. Integer, boolean
    and half-precision arrays are refused rather than guessed at (pixel codes 0..255 and inputs in
    [0, 1] look alike to a program)."""
    x = load_npy(path, what)
    if x.dtype not in (np.float32, np.float64):
        raise InputError(path, f"{what} are {x.dtype}; expected float32 or float64 values (convert with "
                               "x.astype(np.float32), scaled as the model expects)")
    if x.size == 0:
        raise InputError(path, f"{what} are empty (shape {list(x.shape)}); expected at least one row")
    bad = ~np.isfinite(x)
    if bad.any():
        raise InputError(path, f"{what} hold {int(bad.sum())} NaN/Inf value(s), first at index "
                               f"{[int(i) for i in np.argwhere(bad)[0]]}")
    return x.astype(np.float64)


def load_samples(path, shape, what: str, flat_ok: bool = False) -> np.ndarray:
    """A batch of model inputs ``[N, *shape]`` (or ``[N, prod(shape)]`` if ``flat_ok``) as float64."""
    x = load_floats(path, what)
    shape = tuple(shape)
    exact = x.ndim == len(shape) + 1 and tuple(x.shape[1:]) == shape
    flat = flat_ok and x.ndim == 2 and x.shape[1] == int(np.prod(shape))
    if not (exact or flat):
        want = f"[N, {', '.join(map(str, shape))}]" + (f" or [N, {int(np.prod(shape))}]" if flat_ok and len(shape) > 1 else "")
        raise InputError(path, f"{what} have shape {list(x.shape)}; expected {want} (rank {len(shape) + 1}: a batch "
                               "of the model's input)")
    return x.reshape((x.shape[0], *shape))


def load_labels(path, n: int) -> np.ndarray:
    """Class labels ``[n]``: integers >= 0, one per input (their upper bound is checked against the
    model's output by :func:`check_labels`)."""
    y = load_npy(path, "labels")
    if y.dtype.kind not in "iu":
        raise InputError(path, f"labels are {y.dtype}; expected integer class indices (int32 or int64)")
    y = y.reshape(-1).astype(np.int64)
    if y.shape[0] != n:
        raise InputError(path, f"{y.shape[0]} labels for {n} inputs")
    if n and y.min() < 0:
        raise InputError(path, f"label {int(y.min())} at index {int(np.argmin(y))}; class indices start at 0")
    return y


def check_labels(path, y: np.ndarray, classes: int) -> None:
    """Every label names one of the model's ``classes`` outputs."""
    if y.size and y.max() >= classes:
        raise InputError(path, f"label {int(y.max())} at index {int(np.argmax(y))}; the model has {classes} "
                               f"output(s), so class indices are 0..{classes - 1}")


def load_yaml(data: bytes | str, where) -> object:
    """A YAML document through ``yaml.SafeLoader``, refused in one line if it is invalid, nested
    deeper than MAX_YAML_DEPTH, or larger than MAX_YAML_NODES nodes with its aliases expanded. The
    depth is measured on the event stream (no recursion); the expanded size is counted on the node
    graph, each shared (aliased) node once, before any Python object is built."""
    import yaml

    try:
        depth = 0
        for ev in yaml.parse(data, Loader=yaml.SafeLoader):
            if isinstance(ev, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    line = f" at line {ev.start_mark.line + 1}" if ev.start_mark is not None else ""
                    raise InputError(where, f"YAML nested deeper than {MAX_YAML_DEPTH} levels{line}")
            elif isinstance(ev, yaml.CollectionEndEvent):
                depth -= 1
        loader = yaml.SafeLoader(data)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            size = _yaml_size(node, {})
            if size > MAX_YAML_NODES:
                raise InputError(where, f"YAML expands to {size:.3g} nodes with its aliases (&anchor / *alias) "
                                        f"resolved; the limit is {MAX_YAML_NODES} (put large arrays in a .npy file)")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise InputError(where, f"invalid YAML{at}: {problem}") from None


def _yaml_size(node, memo: dict) -> int:
    """Nodes under ``node`` with aliases expanded (a shared node counts once per reference)."""
    import yaml

    key = id(node)
    if key not in memo:
        memo[key] = 0          # a recursive alias (a node inside itself) counts as one
        if isinstance(node, yaml.SequenceNode):
            n = 1 + sum(_yaml_size(c, memo) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n = 1 + sum(_yaml_size(k, memo) + _yaml_size(v, memo) for k, v in node.value)
        else:
            n = 1
        memo[key] = n
    return memo[key]
