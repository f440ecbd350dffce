"""Interleaved feature maps (backend/verilog.map_interleave): every clock's lanes of every unit that
touches an interleaved map address different parts of it, and each address has its own word in its
part. The lanes' addresses here are the RTL's (top.v.j2): a layer stores columns j0.. of position
pos at j * P + pos (+ base), a dense layer gathers elements e0.., a 1x1 convolution channels c0.. of
one pixel at c * H * W + pixel, the host link one code a clock."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st_

from compiler.backend.verilog import interleave_bank, map_interleave, store_lanes


def _map(name, shape):
    return {"name": name, "shape": list(shape), "bits": 8, "signed": False}


def _program(c, h, w, reader, base=0, c_total=None):
    """recv -> a 3x3 convolution writing map ``x`` (``c`` channels of h x w, at channel offset ``base``
    of ``c_total``) -> ``reader`` ("dense" or "1x1") -> send."""
    c_total = c_total or c
    x = _map("x", (c_total, h, w))
    src = _map("in", (1, h, w))
    conv = {"kind": "layer", "name": "conv", "src": src, "dst": x, "positions": h * w, "cols": c, "rows": 9,
            "conv": {"kernel": [3, 3]}, "base": base * h * w}
    if reader == "dense":
        rd = {"kind": "layer", "name": "fc", "src": _map("x", (c_total * h * w,)), "dst": _map("y", (10,)),
              "positions": 1, "cols": 10, "rows": c_total * h * w, "conv": None}
    else:
        rd = {"kind": "layer", "name": "pw", "src": x, "dst": _map("y", (10, h, w)), "positions": h * w,
              "cols": 10, "rows": c_total, "conv": {"kernel": [1, 1]}}
    return {"steps": [{"kind": "recv", "dst": src}, conv, rd, {"kind": "send", "src": rd["dst"]}]}


def _clocks(prog, name, lanes):
    """Every clock's addresses of map ``name`` by every unit's lanes, as the RTL generates them."""
    for st in prog["steps"]:
        if st["kind"] in ("recv", "send"):
            m = st["dst"] if st["kind"] == "recv" else st["src"]
            if m["name"] == name:
                yield from ([a] for a in range(int(np.prod(m["shape"]))))
        if st["kind"] in ("pool", "add"):
            # outputs (and an add's operands) element by element, ln a clock from 0 (lix = idx + lane)
            size = int(np.prod(st["dst"]["shape"]))
            ln = min(lanes, size)
            for m in [st["dst"]] + ([st["src"], st["src2"]] if st["kind"] == "add" else []):
                if m["name"] == name:
                    yield from ([e for e in range(e0, min(e0 + ln, size))] for e0 in range(0, size, ln))
        if st["kind"] != "layer":
            continue
        if st["dst"]["name"] == name:
            p, ls = st["positions"], store_lanes(st, lanes)
            for pos in range(p):
                for j0 in range(0, st["cols"], ls):
                    yield [st.get("base", 0) + j * p + pos for j in range(j0, min(j0 + ls, st["cols"]))]
        if st["src"]["name"] == name:
            k, lg = st["rows"], min(lanes, st["rows"])
            if st["conv"] is None:
                yield from ([e for e in range(e0, min(e0 + lg, k))] for e0 in range(0, k, lg))
            else:
                c, h, w = st["src"]["shape"]
                for pix in range(h * w):
                    yield from ([ch * h * w + pix for ch in range(c0, min(c0 + lg, c))] for c0 in range(0, c, lg))


def _check(prog, lanes):
    found = map_interleave(prog, lanes)
    for name, x in found.items():
        b, skew = x["B"], x["skew"]
        lb = b.bit_length() - 1
        size = next(int(np.prod(m["shape"])) for s in prog["steps"] for m in (s.get("src"), s.get("dst"))
                    if m and m["name"] == name)
        for addrs in _clocks(prog, name, lanes):
            parts = [int(interleave_bank(a, b, skew)) for a in addrs]
            assert len(set(parts)) == len(parts), (name, addrs, parts)
        a = np.arange(size)
        place = interleave_bank(a, b, skew) * (1 << 40) + (a >> lb)
        assert len(np.unique(place)) == size           # one word of one part an address
    return found


def test_cnn_digits_conv_output_is_skewed_over_four_parts():
    # 16 channels of 4 x 4 (P = 16, a multiple of 4): stores 16 apart, the dense layer's gather runs
    # of 4: (a + a div 16) mod 4 separates both
    assert _check(_program(16, 4, 4, "dense"), 4)["x"] == {"B": 4, "skew": 4}


def test_odd_positions_interleave_by_address_and_concat_parts_keep_their_offset():
    # SqueezeNet's 13 x 13 fire outputs: P = 169 is odd, so j * 169 + pos mod 4 differ for 4 columns
    assert _check(_program(64, 13, 13, "1x1"), 4)["x"] == {"B": 4, "skew": None}
    # the second part of a concatenation (channels 64.. of 128), stored at its offset
    assert _check(_program(64, 13, 13, "1x1", base=64, c_total=128), 4)["x"] == {"B": 4, "skew": None}


def test_a_map_another_unit_reads_stays_one_array():
    prog = _program(16, 4, 4, "dense")
    prog["steps"].insert(3, {"kind": "pool", "src": _map("x", (16, 4, 4)), "dst": _map("p", (16, 2, 2))})
    assert "x" not in map_interleave(prog, 4)
    # one lane a unit: nothing to separate
    assert map_interleave(_program(16, 4, 4, "dense"), 1) == {}
    # a 3x3 convolution's gather runs over kernel rows: not one of the two patterns
    prog = _program(16, 4, 4, "1x1")
    prog["steps"][2]["conv"] = {"kernel": [3, 3]}
    assert "x" not in map_interleave(prog, 4)


def test_pooling_and_add_outputs_are_written_in_order_and_interleave():
    # conv -> 2x2 max pooling -> add with itself -> 1x1: the pooling's output (written 4 a clock in
    # order, read by the add the same way) and the add's (read by the 1x1, 9 x 9 = 81 apart: odd)
    prog = _program(16, 18, 18, "1x1")
    x, p, s = _map("x", (16, 18, 18)), _map("p", (16, 9, 9)), _map("s", (16, 9, 9))
    prog["steps"][2:3] = [{"kind": "pool", "src": x, "dst": p},
                          {"kind": "add", "src": p, "src2": p, "dst": s},
                          {**prog["steps"][2], "src": s, "positions": 81, "dst": _map("y", (10, 9, 9))}]
    prog["steps"][-1]["src"] = prog["steps"][-2]["dst"]
    found = _check(prog, 4)
    assert "x" not in found                          # the pooling reads its windows, the stride apart
    assert found["p"] == found["s"] == {"B": 4, "skew": None}


@settings(max_examples=60, deadline=None)
@given(c=st_.integers(1, 40), h=st_.integers(1, 12), w=st_.integers(1, 12), lanes=st_.sampled_from([2, 4, 8]),
       reader=st_.sampled_from(["dense", "1x1"]))
def test_interleaved_maps_never_meet_two_lanes_in_a_part(c, h, w, lanes, reader):
    found = _check(_program(c, h, w, reader), lanes)
    p = h * w
    store, gather = min(c, lanes), min(lanes, c * p if reader == "dense" else c)
    multi = [n for n in (store, gather) if n > 1]
    if not multi:
        assert "x" not in found
        return
    b = 1 << (max(multi) - 1).bit_length()
    # the two patterns it is built for are taken whenever the map is large enough
    odd = p % 2 == 1 or store == 1 and reader == "dense"
    if c * p >= 8 * b and (odd or (p & (p - 1) == 0 and p % b == 0 and c > 1)):
        assert "x" in found, (c, h, w, lanes, reader)
