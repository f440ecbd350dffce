"""The grid and the Pareto front of amsc explore (compiler/eval/explore.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.eval.explore import DEFAULT_GRID, parse_grid, pareto, points


def test_grid_and_points():
    g = parse_grid(["tile=64x64,128x128", "--adc-bits=6, 8"])
    assert g == [("tile", ["64x64", "128x128"]), ("adc-bits", ["6", "8"])]
    assert points(g) == [{"tile": "64x64", "adc-bits": "6"}, {"tile": "64x64", "adc-bits": "8"},
                         {"tile": "128x128", "adc-bits": "6"}, {"tile": "128x128", "adc-bits": "8"}]
    assert parse_grid(None) == [(k, list(v)) for k, v in DEFAULT_GRID]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=12))
def test_pareto_is_the_set_nobody_beats(rows):
    v = np.array(rows, float)
    f = pareto(v)
    for i in range(len(v)):
        beaten = any(np.all(v[j] >= v[i]) and np.any(v[j] > v[i]) for j in range(len(v)))
        assert f[i] == (not beaten)
    assert f.any()


def test_pareto_skips_failed_points():
    v = np.array([[1.0, 1.0], [np.nan, 5.0], [0.5, 2.0]])
    assert pareto(v).tolist() == [True, False, True]
