"""Fault-aware placement (passes/fault_map.py) against brute force, and the chip-state file format
(design/chipstate.py): what a differential pair with stuck cells can still reach, a placement that
is never worse than the compiler's and finds the exact one where it exists, and a state file that
reads back as written, byte for byte the same from the same seed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from compiler.design.chipstate import (HEALTHY, STUCK_HRS, STUCK_LRS, draw_state, read_state, write_state)
from compiler.errors import InputError
from compiler.passes.fault_map import pair_difference, pair_levels, place_tile, placement_cost

TOP = 7.0


def _brute_reach(w, sp, sn):
    """The difference nearest w over every programmable (G+, G-) on the level grid."""
    gps = [sp] if not np.isnan(sp) else np.arange(TOP + 1)
    gns = [sn] if not np.isnan(sn) else np.arange(TOP + 1)
    diffs = np.array([a - b for a in gps for b in gns])
    return diffs[np.argmin(np.abs(diffs - w))]


@pytest.mark.parametrize("sp, sn", list(itertools.product([np.nan, 0.0, TOP, 3.0], repeat=2)))
def test_pair_difference_is_the_nearest_reachable_difference(sp, sn):
    for w in np.arange(-TOP, TOP + 1):
        got = pair_difference(np.array(w), np.array(sp), np.array(sn), TOP)
        assert abs(got - w) == pytest.approx(abs(_brute_reach(w, sp, sn) - w)), (w, sp, sn)


@given(st.integers(0, 2 ** 31 - 1))
@settings(max_examples=40, deadline=None)
def test_pair_levels_realize_the_reachable_difference(seed):
    rng = np.random.default_rng(seed)
    lp, ln = rng.integers(0, TOP + 1, (6, 5)).astype(float), rng.integers(0, TOP + 1, (6, 5)).astype(float)
    u = rng.random((2, 6, 5))
    stuck = np.where(u < 0.2, 0.0, np.where(u < 0.4, TOP, np.nan))
    gp, gn = pair_levels(lp, ln, stuck[0], stuck[1], TOP)
    assert np.all((gp >= 0) & (gp <= TOP) & (gn >= 0) & (gn <= TOP))
    # a stuck cell reads its stuck level; a healthy pair keeps its targets
    for g, s in ((gp, stuck[0]), (gn, stuck[1])):
        assert np.array_equal(g[~np.isnan(s)], s[~np.isnan(s)])
    healthy = np.isnan(stuck[0]) & np.isnan(stuck[1])
    assert np.array_equal(gp[healthy], lp[healthy]) and np.array_equal(gn[healthy], ln[healthy])
    np.testing.assert_allclose(gp - gn, pair_difference(lp - ln, stuck[0], stuck[1], TOP))


def test_placement_finds_the_exact_placement_a_permuted_chip_hides():
    """Weights with zero rows and columns, on a chip whose stuck cells sit exactly where those zeros
    go after a hidden permutation of rows and columns: the placement finds a zero-error placement,
    which the identity does not have."""
    rng = np.random.default_rng(3)
    r, c, R, P = 12, 6, 16, 10
    w = rng.integers(-7, 8, (r, c)).astype(float)
    w[[2, 7], :] = 0.0
    w[:, 4] = 0.0
    sp, sn = np.full((R, P), np.nan), np.full((R, P), np.nan)
    prow, pcol = rng.permutation(R)[:r], rng.permutation(P)[:c]
    bad = [(i, j) for i in range(r) for j in range(c) if w[i, j] == 0]
    for i, j in bad:                                   # every zero weight's cell stuck, on- or off-side
        (sp if (i + j) % 2 else sn)[prow[i], pcol[j]] = TOP
    # and the unused rows and columns full of faults
    for q in set(range(P)) - set(pcol):
        sn[:, q] = TOP
    for p in set(range(R)) - set(prow):
        sp[p, :] = 0.0
    rows, cols, base, best = place_tile(w, sp, sn, TOP)
    assert base > 0 and best == 0.0
    assert len(set(rows)) == r and len(set(cols)) == c
    assert placement_cost(w, sp, sn, rows, cols, TOP, np.ones(r)) == 0.0


@given(st.integers(0, 2 ** 31 - 1), st.floats(0.0, 0.4), st.sampled_from([1, 2, 4]))
@settings(max_examples=25, deadline=None)
def test_placement_is_never_worse_than_where_the_compiler_put_the_weights(seed, rate, bank):
    """... and keeps every row and column in its bank (``rows[i] = i``, ``cols[j] = j (mod bank)``:
    the tile wrapper writes word line w from one gather lane only, and a column selects among its
    bank's pairs)."""
    rng = np.random.default_rng(seed)
    r, c = rng.integers(1, 9), rng.integers(1, 6)
    R, P = r + rng.integers(0, 4), c + rng.integers(0, 3)
    w = rng.integers(-7, 8, (r, c)).astype(float)
    u = rng.random((2, R, P))
    stuck = np.where(u < rate / 2, 0.0, np.where(u < rate, TOP, np.nan))
    m = rng.uniform(0.1, 2.0, r)
    rows, cols, base, best = place_tile(w, stuck[0], stuck[1], TOP, m, bank=bank)
    assert best <= base + 1e-9
    assert best == pytest.approx(placement_cost(w, stuck[0], stuck[1], rows, cols, TOP, m))
    assert len(set(rows.tolist())) == r and len(set(cols.tolist())) == c
    assert rows.max() < R and cols.max() < P
    assert np.all((rows - np.arange(r)) % bank == 0) and np.all((cols - np.arange(c)) % bank == 0), (rows, cols)


def test_banked_placement_finds_the_exact_placement_within_the_banks():
    """A chip whose stuck cells sit under the weights' zeros after a hidden permutation of rows
    that keeps each row in its bank (mod 4): the banked placement finds the zero-error placement
    too."""
    rng = np.random.default_rng(5)
    r, c, R, bank = 8, 4, 16, 4
    w = rng.integers(1, 8, (r, c)).astype(float)
    w[[1, 6], :] = 0.0
    prow = np.arange(r) + bank * rng.integers(0, 2, r)          # row i on i or i + 4: in its bank
    prow[[0, 4]] = prow[[4, 0]]                                  # rows 0 and 4 share bank 0: swap
    assert len(set(prow)) == r and np.all((prow - np.arange(r)) % bank == 0)
    sp = np.full((R, c), 0.0)                                    # every cell stuck at 0 ...
    sn = np.full((R, c), 0.0)
    for i in range(r):                                           # ... but under a nonzero weight
        sp[prow[i], w[i] != 0] = np.nan
    rows, cols, base, best = place_tile(w, sp, sn, TOP, bank=bank)
    assert base > 0 and best == 0.0 and np.array_equal(cols, np.arange(c))
    assert np.all((rows - np.arange(r)) % bank == 0)


def _manifest(tiles=(("a_r0c0", 8, 8), ("b_r0c0", 16, 4))):
    return {"design": "toy", "pdk": {"name": "t", "g_min": 1e-6, "g_max": 1e-4, "levels": 8},
            "tiles": [{"name": n, "tile_size": [r, c]} for n, r, c in tiles]}


def test_chip_state_round_trip_and_bytes(tmp_path):
    m = _manifest()
    s = draw_state(m, 5, 0.1, 0.2, 0.05)
    assert s.stuck["a_r0c0"].shape == (2, 8, 4) and s.stuck["b_r0c0"].shape == (2, 16, 2)
    write_state(s, tmp_path / "a.npz")
    write_state(draw_state(m, 5, 0.1, 0.2, 0.05), tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = read_state(tmp_path / "a.npz", m["tiles"], m["pdk"], "toy")
    for n in s.stuck:
        assert np.array_equal(back.stuck[n], s.stuck[n]) and np.array_equal(back.g[n], s.g[n])
    sp, sn = back.stuck_levels("a_r0c0")
    assert np.all(np.isnan(sp) == (s.stuck["a_r0c0"][0] == HEALTHY))
    assert set(np.unique(sp[~np.isnan(sp)])) <= {0.0, 7.0}
    assert np.all(sp[s.stuck["a_r0c0"][0] == STUCK_LRS] == 7.0) and np.all(sp[s.stuck["a_r0c0"][0] == STUCK_HRS] == 0)
    # the rates: many cells
    big = draw_state(_manifest((("t", 256, 256),)), 1, 0.05, 0.1, 0.0)
    c = big.fault_counts()
    assert abs(c["stuck_hrs"] / c["cells"] - 0.05) < 0.005 and abs(c["stuck_lrs"] / c["cells"] - 0.1) < 0.005


def _write_raw(path, header, arrays):
    import json
    import zipfile

    from compiler.design.chipstate import _npy
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("header.npy", _npy(np.array(json.dumps(header))))
        for k, a in arrays.items():
            z.writestr(f"{k}.npy", _npy(a))


@pytest.mark.parametrize("case, needle", [
    ("count", "holds 1 tiles; the design 'toy' has 2"),
    ("order", "tile 0 is 'b_r0c0'; the design's tile 0 is 'a_r0c0'"),
    ("shape", "stuck has shape [2, 8, 3]"),
    ("nan", "is not in (0,"),
    ("negative", "is not in (0,"),
    ("huge", "above 2 x G_max"),
    ("code", "stuck map holds values other than"),
    ("levels", "levels 16 is not the design's PDK's 8"),
    ("format", "expected format 'amsc-chip-state'"),
])
def test_chip_state_that_does_not_fit_the_design(tmp_path, case, needle):
    m = _manifest()
    s = draw_state(m, 0, 0.1, 0.1, 0.05)
    header = dict(s.header)
    arrays = {f"{n}.{k}": getattr(s, k)[n] for n in s.stuck for k in ("stuck", "g")}
    if case == "count":
        header["tiles"] = header["tiles"][:1]
    elif case == "order":
        header["tiles"] = header["tiles"][::-1]
    elif case == "shape":
        arrays["a_r0c0.stuck"] = arrays["a_r0c0.stuck"][:, :, :3]
    elif case in ("nan", "negative", "huge"):
        g = arrays["b_r0c0.g"].copy()
        g[1, 3, 1] = {"nan": np.nan, "negative": -1e-6, "huge": 1.0}[case]
        arrays["b_r0c0.g"] = g
    elif case == "code":
        a = arrays["a_r0c0.stuck"].copy()
        a[0, 0, 0] = 3
        arrays["a_r0c0.stuck"] = a
    elif case == "levels":
        header["levels"] = 16
    elif case == "format":
        header["format"] = "something"
    p = tmp_path / "bad.npz"
    _write_raw(p, header, arrays)
    with pytest.raises(InputError) as e:
        read_state(p, m["tiles"], m["pdk"], "toy")
    assert needle in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_not_a_chip_state(tmp_path):
    m = _manifest()
    for name, data in (("empty.npz", b""), ("text.npz", b"hello")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match="not a chip state"):
            read_state(tmp_path / name, m["tiles"], m["pdk"], "toy")
    with pytest.raises(InputError, match="no such chip-state file"):
        read_state(tmp_path / "missing.npz", m["tiles"], m["pdk"], "toy")


def test_column_fit_recovers_gain_and_offset():
    from compiler.passes.calibrate import MIN_GAIN, fit_columns

    rng = np.random.default_rng(0)
    ideal = rng.normal(size=(200, 5))
    a, b = np.array([1.1, 0.9, 1.0, 0.5, 0.01]), np.array([0.2, -0.1, 0.0, 3.0, 0.0])
    meas = ideal * a + b
    ga, gb = fit_columns(meas, ideal)
    np.testing.assert_allclose(ga[:4], a[:4], rtol=1e-9)
    np.testing.assert_allclose(gb[:4], b[:4], atol=1e-9)
    assert a[4] < MIN_GAIN and ga[4] == 1.0 and gb[4] == 0.0          # a dead column: left alone
    ga, gb = fit_columns(meas[:, :1] * 0 + 1.0, np.zeros((200, 1)))   # no weight on the column
    assert ga[0] == 1.0 and gb[0] == 1.0                             # a pure offset


@given(st.integers(0, 2 ** 31 - 1), st.floats(0.0, 3.0))
@settings(max_examples=40, deadline=None)
def test_column_fit_never_moves_a_column_away_from_its_ideal(seed, unexplained):
    """A column whose reads the ideal explains only in part (stuck cells the placement could not
    hide, read noise): the correction ``(meas - b) / a`` is at least as close to the ideal on the
    read set as the column left alone, and as the fit of meas on ideal (which divides by a small gain
    and amplifies the unexplained part)."""
    from compiler.passes.calibrate import fit_columns

    rng = np.random.default_rng(seed)
    ideal = rng.normal(size=(64, 6))
    meas = ideal * rng.uniform(0.1, 1.5, 6) + rng.normal(size=6) + unexplained * rng.normal(size=(64, 6))
    a, b = fit_columns(meas, ideal)
    err = (((meas - b) / a - ideal) ** 2).sum(axis=0)
    assert np.all(err <= ((meas - ideal) ** 2).sum(axis=0) + 1e-9)
    di = ideal - ideal.mean(axis=0)
    a_fwd = (di * (meas - meas.mean(axis=0))).sum(axis=0) / (di * di).sum(axis=0)
    live = a_fwd > 0.05
    b_fwd = meas.mean(axis=0) - a_fwd * ideal.mean(axis=0)
    err_fwd = (((meas - b_fwd) / a_fwd - ideal) ** 2).sum(axis=0)
    assert np.all(err[live] <= err_fwd[live] + 1e-9)


def test_route_banks_from_options_manifests_and_the_former_flag():
    """The banks a placement keeps rows and columns in: the lanes, or one with ``off``; a manifest
    written before column banks names the option ``row_banks``; ``--row-banks`` still parses."""
    from compiler.cli import build_parser, compile_options
    from compiler.options import CompileOptions, route_banks_of

    assert route_banks_of(CompileOptions()) == 4 and route_banks_of(CompileOptions(route_banks="off")) == 1
    assert route_banks_of(CompileOptions(lanes=2)) == 2
    assert route_banks_of({"route_banks": "lanes", "lanes": 8}) == 8
    assert route_banks_of({"row_banks": "off", "lanes": 8}) == 1 and route_banks_of({"lanes": 2}) == 2
    for flag in ("--route-banks", "--row-banks"):
        args = build_parser().parse_args(["compile", "m.onnx", "-o", "out", flag, "off"])
        assert compile_options(args).route_banks == "off"
