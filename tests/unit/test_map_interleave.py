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


#: a 2x2 max pooling of stride 2
POOL2 = {"pool": "max", "kernel": [2, 2], "stride": [2, 2], "pads": [0, 0, 0, 0], "dilation": [1, 1]}


def _program(c, h, w, reader, base=0, c_total=None):
    """recv -> a 3x3 convolution writing map ``x`` (``c`` channels of h x w, at channel offset ``base``
    of ``c_total``) -> ``reader`` ("dense" or "1x1") -> send."""
    c_total = c_total or c
    x = _map("x", (c_total, h, w))
    src = _map("in", (1, h, w))
    conv = {"kind": "layer", "name": "conv", "src": src, "dst": x, "positions": h * w, "cols": c, "rows": 9,
            "conv": {"kernel": [3, 3], "stride": [1, 1], "pads": [1] * 4, "dilation": [1, 1]}, "base": base * h * w}
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
        if x.get("coord"):
            continue      # the third pattern: _check_coord
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
    prog["steps"].insert(3, {"kind": "pool", "src": _map("x", (16, 4, 4)), "dst": _map("p", (16, 2, 2)), **POOL2})
    assert "x" not in map_interleave(prog, 4)
    # one lane a unit: nothing to separate
    assert map_interleave(_program(16, 4, 4, "dense"), 1) == {}
    # a 3x3 convolution's gather runs over kernel rows: not one of the two patterns by address,
    # but the third, by coordinates (the tests below)
    prog = _program(16, 4, 4, "1x1")
    prog["steps"][2]["conv"] = {"kernel": [3, 3]}
    assert map_interleave(prog, 4)["x"]["coord"] is not None


def test_pooling_and_add_outputs_are_written_in_order_and_interleave():
    # conv -> 2x2 max pooling -> add with itself -> 1x1: the pooling's output (written 4 a clock in
    # order, read by the add the same way) and the add's (read by the 1x1, 9 x 9 = 81 apart: odd)
    prog = _program(16, 18, 18, "1x1")
    x, p, s = _map("x", (16, 18, 18)), _map("p", (16, 9, 9)), _map("s", (16, 9, 9))
    prog["steps"][2:3] = [{"kind": "pool", "src": x, "dst": p, **POOL2},
                          {"kind": "add", "src": p, "src2": p, "dst": s},
                          {**prog["steps"][2], "src": s, "positions": 81, "dst": _map("y", (10, 9, 9))}]
    prog["steps"][-1]["src"] = prog["steps"][-2]["dst"]
    found = _check(prog, 4)
    # the pooling reads its windows, the stride apart: the third pattern, by coordinates
    assert found["x"]["coord"] == {"s": 2, "alpha": 1, "gamma": 1, "C": 16, "H": 18, "W": 18, "xw": 3}
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


# ---- the third pattern: by the units' coordinates ---------------------------------------------

def _conv_writer(c, h, w, base=0, c_total=None, stride=1):
    """recv -> a 3x3 convolution writing map ``x`` (``c`` channels of h x w at channel ``base`` of ``c_total``)."""
    c_total = c_total or c
    x = _map("x", (c_total, h, w))
    src = _map("in", (1, h * stride, w * stride))
    return x, [{"kind": "recv", "dst": src},
               {"kind": "layer", "name": "conv", "src": src, "dst": x, "positions": h * w, "cols": c, "rows": 9,
                "conv": {"kernel": [3, 3], "stride": [stride] * 2, "pads": [1] * 4, "dilation": [1, 1]},
                "base": base * h * w}]


def _coord_program(c, h, w, reader, k=3, s=2, pad=1, wstride=1):
    """The writer above (of stride ``wstride``), then ``reader`` of map x: a max pooling or a
    convolution (k x k, stride s, padding pad), then the host link."""
    x, steps = _conv_writer(c, h, w, stride=wstride)
    ho, wo = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    geo = {"kernel": [k, k], "stride": [s, s], "pads": [pad] * 4, "dilation": [1, 1]}
    if reader == "pool":
        rd = {"kind": "pool", "pool": "max", "src": x, "dst": _map("p", (c, ho, wo)), **geo}
    else:
        rd = {"kind": "layer", "name": "rd", "src": x, "dst": _map("p", (6, ho, wo)), "positions": ho * wo,
              "cols": 6, "rows": c * k * k, "conv": geo}
    return {"steps": steps + [rd, {"kind": "send", "src": rd["dst"]}]}


def _coord_clocks(prog, name, lanes):
    """Every clock's (channel, row, col) of map ``name`` by every unit's valid lanes, as the RTL makes
    them: a convolution stores channels j.. of pixel (yb, xb); a convolution's gather reads kernel
    elements e.. = (c, ky, kx) of the window at (Y, X), (Y s + ky - pad, X s + kx - pad) where in
    bounds; a pooling's lanes make outputs o.. = (c, y, x), all at window offset (yb, xb)."""
    from compiler.backend.verilog import _per_step
    per = _per_step(prog, lanes)
    for k, st in enumerate(prog["steps"]):
        n = per[k]
        if st["kind"] == "recv" and st["dst"]["name"] == name:     # the host link, a code a clock
            ch, h, w = st["dst"]["shape"]
            yield from ([(a // (h * w), a % (h * w) // w, a % w)] for a in range(ch * h * w))
        if st["kind"] == "layer" and st["dst"]["name"] == name:
            # a layer keeping a pooling's maximum of each group of g columns stores a code a group:
            # channel j / g of its grid's pixel
            ch, h, w = st["dst"]["shape"]
            g = st.get("group") or 1
            h, w = st.get("grid") or (h, w)
            c0, ls = st.get("base", 0) // (h * w), store_lanes(st, n)
            for pos in range(st["positions"]):
                for j0 in range(0, st["cols"], ls):
                    yield [(j // g + c0, pos // w, pos % w) for j in range(j0, min(j0 + ls, st["cols"]), g)]
        if st["kind"] == "layer" and st["src"]["name"] == name:
            ch, h, w = st["src"]["shape"]
            (kh, kw), (sy, sx), pads = st["conv"]["kernel"], st["conv"]["stride"], st["conv"]["pads"]
            _, ho, wo = st["dst"]["shape"]
            kk, lg = st["rows"], min(n, st["rows"])
            for pos in range(ho * wo):
                yy, xx = divmod(pos, wo)
                for e0 in range(0, kk, lg):
                    lane = []
                    for e in range(e0, min(e0 + lg, kk)):
                        c, r = divmod(e, kh * kw)
                        yi, xi = yy * sy + r // kw - pads[0], xx * sx + r % kw - pads[1]
                        if 0 <= yi < h and 0 <= xi < w:
                            lane.append((c, yi, xi))
                    yield lane
        if st["kind"] in ("pool", "add", "lut", "mul", "remap"):
            # an element-wise unit's lanes make (and read the operands of) elements idx + lane, from 0
            ops = [st["dst"]] + ([st["src"]] if st["kind"] in ("add", "lut", "mul") else []) \
                + ([st["src2"]] if st["kind"] == "add" else [])
            if any(m["name"] == name for m in ops):
                ch, h, w = st["dst"]["shape"]
                size = ch * h * w
                ln = min(n, size)
                for e0 in range(0, size, ln):
                    yield [(e // (h * w), e % (h * w) // w, e % w) for e in range(e0, min(e0 + ln, size))]
        if st["kind"] == "pool" and st["src"]["name"] == name:
            ch, h, w = st["src"]["shape"]
            _, ho, wo = st["dst"]["shape"]
            size, (sy, sx), pads = ch * ho * wo, st["stride"], st["pads"]
            ln = min(n, size)
            for yb in range(st["kernel"][0]):
                for xb in range(st["kernel"][1]):
                    for o0 in range(0, size, ln):
                        lane = []
                        for o in range(o0, min(o0 + ln, size)):
                            c, r = divmod(o, ho * wo)
                            yi, xi = r // wo * sy + yb - pads[0], r % wo * sx + xb - pads[1]
                            if 0 <= yi < h and 0 <= xi < w:
                                lane.append((c, yi, xi))
                        yield lane


def _check_coord(prog, lanes):
    from compiler.backend.verilog import interleave_coord
    found = map_interleave(prog, lanes)
    for name, x in found.items():
        if not x.get("coord"):
            continue
        b, co = x["B"], x["coord"]
        for lane in _coord_clocks(prog, name, lanes):
            parts = [int(interleave_coord(c, y, xx, b, co)[0]) for c, y, xx in lane]
            assert len(set(parts)) == len(parts), (name, lane, parts)
        c, y, xx = np.meshgrid(*(np.arange(n) for n in (co["C"], co["H"], co["W"])), indexing="ij")
        part, word = interleave_coord(c.ravel(), y.ravel(), xx.ravel(), b, co)
        assert len(np.unique(part * (1 << 40) + word)) == c.size     # one word of one part an element
        assert word.max() < co["C"] * co["H"] * co["xw"] * co["s"]    # the parts' words
    return found


def test_pooling_and_kxk_inputs_interleave_by_coordinates():
    # SqueezeNet 1.1's conv1 output at 64 x 64: 64 x 31 x 31, read by a 3x3 stride-2 max pooling
    # (15 x 15 outputs: 225, odd) -- 19 M gates of its flat synthesis as one array of 4 read ports
    found = _check_coord(_coord_program(64, 31, 31, "pool", 3, 2, 0), 4)
    assert found["x"]["coord"]["s"] == 2 and found["x"]["coord"]["alpha"] == 15 % 4
    # ResNet-50's: 112 x 112 -> 56 x 56 (3136 outputs a channel, a multiple of the lanes)
    assert _check_coord(_coord_program(8, 112, 112, "pool", 3, 2, 1), 4)["x"]["coord"]["gamma"] == 1
    # a 3x3 convolution's gather (s = 1, alpha = 3, gamma = 9) and a strided one; the image the
    # host link writes, a code a clock, for the first convolution's gather (stride 2: 30 x 30 in)
    found = _check_coord(_coord_program(16, 15, 15, "conv", 3, 1, 1), 4)
    assert found["x"]["coord"]["s"] == 1 and found["in"]["coord"]["alpha"] == 3
    assert _check_coord(_coord_program(16, 15, 15, "pool", 3, 2, 0, wstride=2), 4)["in"]["coord"]["H"] == 30
    assert "x" in _check_coord(_coord_program(16, 14, 14, "conv", 3, 2, 1), 8)


def test_coordinates_refuse_what_they_cannot_separate():
    # 2 x 2 outputs a channel (even, not a multiple of 4 lanes): a lane group crosses channels
    # with gamma = 2, and the stores' channels need an odd one
    assert "x" not in map_interleave(_coord_program(16, 10, 10, "pool", 2, 5, 0), 4)
    # stride 3: not a power of two
    assert "x" not in map_interleave(_coord_program(16, 15, 15, "pool", 3, 3, 0), 4)
    # a 2x2 kernel: gamma = 4, even
    assert "x" not in map_interleave(_coord_program(16, 15, 15, "conv", 2, 1, 0), 4)
    # a dense layer's gather of the same map: by address, not coordinates
    prog = _coord_program(16, 15, 15, "pool", 3, 2, 0)
    prog["steps"].insert(3, {"kind": "layer", "name": "fc", "src": _map("x", (16 * 15 * 15,)), "dst": _map("f", (10,)),
                             "positions": 1, "cols": 10, "rows": 16 * 225, "conv": None})
    assert "x" not in map_interleave(prog, 4)


@settings(max_examples=80, deadline=None)
@given(c=st_.integers(1, 24), h=st_.integers(2, 14), w=st_.integers(2, 14), lanes=st_.sampled_from([2, 4, 8]),
       reader=st_.sampled_from(["pool", "conv"]), k=st_.sampled_from([1, 2, 3, 5]), s=st_.sampled_from([1, 2, 3, 4]),
       pad=st_.integers(0, 1))
def test_coordinate_maps_never_meet_two_lanes_in_a_part(c, h, w, lanes, reader, k, s, pad):
    if (h + 2 * pad - k) < 0 or (w + 2 * pad - k) < 0:
        return
    prog = _coord_program(c, h, w, reader, k, s, pad)
    found = _check_coord(prog, lanes)
    multi = [n for n in (min(c, lanes), min(lanes, c * k * k)) if n > 1]
    if reader == "conv" and k % 2 == 1 and multi and c * h * w >= 8 * (1 << (max(multi) - 1).bit_length()):
        assert "x" in found, (c, h, w, lanes, k, s, pad)      # odd kernels always separate


def test_a_one_lane_reader_puts_no_constraint_on_the_parts():
    # a stride-3 pooling reading one output a clock (lanes where they pay: backend/verilog.step_lanes)
    # meets nothing in any part: the stores' 4 lanes alone set the function
    prog = _coord_program(16, 15, 15, "pool", 3, 3, 0)
    found = _check_coord(prog, [1, 4, 1, 1])
    assert found["x"]["coord"] == {"s": 1, "alpha": 1, "gamma": 1, "C": 16, "H": 15, "W": 15, "xw": 4}
    assert "x" not in map_interleave(prog, 4)


def _row_program(c, h, w, k, unit, pool):
    """The 3x3 writer, then an element-wise ``unit`` ("add" of x to itself through a second map y
    the same writer shape fills, "lut") making map z from x, then a k x k convolution gathering x
    and z (or, ``pool``, a 2x2 pooling of stride 2 reading z): every map by coordinates or none."""
    x, steps = _conv_writer(c, h, w)
    z = _map("z", (c, h, w))
    if unit == "add":
        y = _map("y", (c, h, w))
        steps.append({**steps[1], "name": "conv2", "dst": y})
        steps.append({"kind": "add", "src": x, "src2": y, "dst": z})
    else:
        steps.append({"kind": "lut", "src": x, "dst": z})
    geo = {"kernel": [k, k], "stride": [1, 1], "pads": [k // 2] * 4, "dilation": [1, 1]}
    for src, out in ((x, "p"), (z, "q")):
        if pool and src is z:
            steps.append({"kind": "pool", "pool": "max", "src": z, "dst": _map(out, (c, h // 2, w // 2)),
                          "kernel": [2, 2], "stride": [2, 2], "pads": [0] * 4, "dilation": [1, 1]})
        else:
            steps.append({"kind": "layer", "name": out, "src": src, "dst": _map(out, (6, h, w)), "positions": h * w,
                          "cols": 6, "rows": c * k * k, "conv": geo})
    return {"steps": steps + [{"kind": "send", "src": steps[-1]["dst"]}]}


def test_element_wise_units_are_coordinate_sites_where_their_lanes_fit_a_row():
    # ResNet-50's 1x1 convolutions' outputs (56 x 56: the stores' stride 3136 is even and no power of
    # two) read by a residual add: one array each before; the add's 4 lanes are columns of one row
    found = _check_coord(_row_program(8, 12, 12, 3, "add", False), 4)
    assert {"x", "y", "z"} <= set(found) and all(found[m].get("coord") for m in ("x", "y", "z"))
    # a row that does not hold whole lane groups (10 columns, 4 lanes): the lanes cross rows
    assert "z" not in map_interleave(_row_program(8, 10, 10, 3, "lut", False), 4)
    # a 2x2 pooling's reads want s = 2, the table's output lanes s = 1
    assert "z" not in map_interleave(_row_program(8, 12, 12, 3, "lut", True), 4)


@settings(max_examples=60, deadline=None)
@given(c=st_.integers(1, 12), h=st_.integers(2, 12), w=st_.sampled_from([2, 4, 6, 8, 12, 16]),
       lanes=st_.sampled_from([2, 4, 8]), k=st_.sampled_from([1, 3, 5]), unit=st_.sampled_from(["add", "lut"]),
       pool=st_.booleans())
def test_maps_element_wise_units_touch_never_meet_two_lanes_in_a_part(c, h, w, lanes, k, unit, pool):
    found = _check_coord(_row_program(c, h, w, k, unit, pool), lanes)
    ln, lg = min(lanes, c * h * w), min(lanes, c * k * k)
    b = 1 << (max(ln, lg) - 1).bit_length()
    if not pool and w % ln == 0 and max(ln, lg) > 1 and c * h * w >= 8 * b:
        assert "z" in found, (c, h, w, lanes, k, unit)    # by address (a 1x1 gather's one lane) or coordinates


def _group_program(c, h, w, g, k):
    """A convolution keeping the maximum of each group of ``g`` columns (a pooling folded into its
    stores, qmodel._pool_group: ``c * g`` columns, the pooled map named (c, 1, h w) on an h x w grid),
    then a k x k convolution gathering the pooled map as (c, h, w)."""
    src = _map("in", (1, 2 * h, 2 * w))
    geo = {"kernel": [k, k], "stride": [1, 1], "pads": [k // 2] * 4, "dilation": [1, 1]}
    lay = {"kind": "layer", "name": "conv1", "src": src, "dst": _map("m", (c, 1, h * w)), "positions": h * w,
           "cols": c * g, "rows": 16, "group": g, "grid": [h, w],
           "conv": {"kernel": [4, 4], "stride": [2, 2], "pads": [1] * 4, "dilation": [1, 1]}}
    rd = {"kind": "layer", "name": "conv2", "src": _map("m", (c, h, w)), "dst": _map("p", (6, h, w)),
          "positions": h * w, "cols": 6, "rows": c * k * k, "conv": geo}
    return {"steps": [{"kind": "recv", "dst": src}, lay, rd, {"kind": "send", "src": rd["dst"]}]}


def test_a_layer_keeping_a_pooling_stores_its_pooled_map_by_coordinates():
    # cnn_digits' conv1 at 8 lanes: 8 channels of 4 x 4, a code for each group of 4 columns, read by
    # conv2's 3x3 gather -- 256 words with 8 read ports as one array before
    found = _check_coord(_group_program(8, 4, 4, 4, 3), 8)
    assert found["m"] == {"B": 8, "skew": None, "coord": {"s": 1, "alpha": 3, "gamma": 1, "C": 8, "H": 4, "W": 4,
                                                          "xw": 1}}
    # the pooled map named (c, 1, h w) by a reader too: not one (c, y, x), one array
    prog = _group_program(8, 4, 4, 4, 3)
    prog["steps"].insert(3, {"kind": "layer", "name": "fc", "src": _map("m", (8 * 16,)), "dst": _map("f", (10,)),
                             "positions": 1, "cols": 10, "rows": 128, "conv": None})
    assert "m" not in map_interleave(prog, 8)


@settings(max_examples=60, deadline=None)
@given(c=st_.integers(1, 16), h=st_.integers(2, 8), w=st_.integers(2, 8), g=st_.sampled_from([2, 4]),
       lanes=st_.sampled_from([2, 4, 8, 16]), k=st_.sampled_from([1, 3, 5]))
def test_pooled_maps_never_meet_two_lanes_in_a_part(c, h, w, g, lanes, k):
    found = _check_coord(_group_program(c, h, w, g, k), lanes)
    multi = [n for n in (store_lanes({"cols": c * g, "group": g}, lanes) // g, min(lanes, c * k * k)) if n > 1]
    if multi and c * h * w >= 8 * (1 << (max(multi) - 1).bit_length()):
        assert "m" in found, (c, h, w, g, lanes, k)     # odd kernels always separate
