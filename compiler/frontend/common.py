"""Helpers shared by the front ends."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: A weight matrix larger than this is refused (128 Mi elements = 1 GiB of float64; VGG-19's fc6 has 103 M).
MAX_WEIGHT_ELEMENTS = 128 * 1024 * 1024


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
    return a


def load_npy(path, what: str) -> np.ndarray:
    """A numeric .npy array, or a one-line error naming the file."""
    from pathlib import Path

    from ..errors import InputError

    try:
        x = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(path, f"cannot read {what}: {e}") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
        raise InputError(path, f"{what} must be a numeric .npy array")
    return x


def load_samples(path, shape, what: str, flat_ok: bool = False) -> np.ndarray:
    """A batch of model inputs ``[N, *shape]`` (or ``[N, prod(shape)]`` if ``flat_ok``) as float64."""
    from ..errors import InputError

    x = load_npy(path, what)
    shape = tuple(shape)
    exact = x.ndim == len(shape) + 1 and tuple(x.shape[1:]) == shape
    flat = flat_ok and x.ndim == 2 and x.shape[1] == int(np.prod(shape))
    if not (exact or flat) or not np.all(np.isfinite(x)):
        want = f"[N, {', '.join(map(str, shape))}]" + (f" or [N, {int(np.prod(shape))}]" if flat_ok and len(shape) > 1 else "")
        raise InputError(path, f"{what} have shape {list(x.shape)}; expected {want} with finite values")
    return x.reshape((x.shape[0], *shape)).astype(np.float64)
