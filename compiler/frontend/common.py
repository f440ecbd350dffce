"""Helpers shared by the front ends."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: A weight matrix larger than this is refused (64 Mi elements = 512 MiB of float64).
MAX_WEIGHT_ELEMENTS = 64 * 1024 * 1024


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
