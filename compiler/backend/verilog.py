"""Verilog back end: one parameterized analog-macro black box and one tile wrapper for all tiles
(each instance gets its sizes and its place in the scan chain), the chip top (memories, gather
units, accumulators, requantizers, pooling, sequencing FSM, host and scan interfaces), and for
simulation one behavioural macro model (its per-tile ADC constants in a table) plus a testbench.

Buses are flat: ``dac_in[(i+1)*DAC_BITS-1 : i*DAC_BITS]`` is word line ``i``, and
``adc_out[(j+1)*ADC_BITS-1 : j*ADC_BITS]`` is output column ``j``. The datapath follows the
integer program of ``qmodel.py``; designs it cannot express yet get the wrapper and macro modules only.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .. import __version__
from ..ir import IR
from ..ir.names import sanitize
from ..options import lanes_of
from ..passes.tile import tile_adc_share
from .qmodel import REMAP_RANK
from .render import render

MACRO_LATENCY = 2  # cycles of a read (the TIAs settling) from conv_start, before the conversions
#: Clocks from a read's start during which its word lines must hold (the read's settling, until the
#: sample-and-holds take the TIA outputs): the gather of the next position, which writes the tiles'
#: DAC registers, waits them out (tile_wrapper.v.j2; a tile without a sample-and-hold latches its
#: DAC codes for the whole read instead, HOLD)
SETTLE = MACRO_LATENCY


#: A step gets fewer lanes than ``--lanes`` where they buy less than this share of its clocks
#: (:func:`step_lanes`): a layer whose reads hide its gather and stores, a one-element unit
LANE_PAYBACK = 0.01


def step_lanes(prog: dict, lanes: int, latency: int | list[int]) -> list[int]:
    """Each program step's lanes: the fewest, at most ``lanes``, whose clocks (:func:`step_cycles`)
    stay within LANE_PAYBACK of its clocks at ``lanes``. A lane is a copy of a unit's arithmetic
    and a read and a write port of the maps it touches; where a layer's gather and stores run under
    its tiles' reads (cnn_digits' conv1: 2,001 clocks at one lane, 1,989 at four) the copies buy
    nothing, so neither one input's latency nor the pipeline's interval moves by more than 1 %.
    0 for a step without lanes (the host link, the host's own steps).

    A layer's lanes ``n`` divide ``lanes``, for its tiles' DAC registers are written in banks: the
    placement keeps a tile's row ``i`` on a word line ``w = i (mod lanes)`` (passes/fault_map.py),
    and gather lane ``l`` carries rows ``i = l (mod n)`` (it steps ``n`` rows a clock from row 0, or
    carries row ``l`` itself when one clock gathers them all), so only lane ``(w + row0) mod n`` ever
    writes word line ``w`` of a tile whose first row is ``row0``: each word line has that lane's
    decoder alone, not every lane's (tile_wrapper.v.j2, BANK)."""
    out = []
    for st, lat in zip(prog["steps"], step_latency(prog, latency)):
        if st["kind"] in ("recv", "send", "host"):
            out.append(0)
            continue
        full = sum(step_cycles(st, lanes, lat).values())
        out.append(next(n for n in range(1, lanes + 1)
                        if (st["kind"] != "layer" or lanes % n == 0)
                        and sum(step_cycles(st, n, lat).values()) <= full * (1 + LANE_PAYBACK)))
    return out


def step_latency(prog: dict, latency: int | list[int]) -> list[int]:
    """Every step's macro latency: :func:`adc_balance`'s list (a layer's tiles read with its own
    ADC share), or one latency for all."""
    return list(latency) if isinstance(latency, list) else [latency] * len(prog["steps"])


def _per_step(prog: dict, lanes: int | list[int]) -> list[int]:
    """Every step's lanes, at least one: :func:`step_lanes`' list (0, a step without lanes, as 1), or
    one count for all."""
    return [max(1, n) for n in lanes] if isinstance(lanes, list) else [lanes] * len(prog["steps"])


def _last(n: int, lanes: int) -> int:
    """The first element of the last clock of a unit that walks ``n`` elements ``lanes`` at a time."""
    return (n - 1) // lanes * lanes


def macro_latency(pdk, share: int) -> int:
    """Cycles from conv_start to conv_done in the behavioural macro: the read, then the ``share``
    conversions each ADC makes one after another (``--adc-share``) at the PDK's ADC rate and clock."""
    if pdk.ppa is None:
        return MACRO_LATENCY
    per = math.ceil(pdk.ppa["digital"]["clock_mhz"] / pdk.ppa["adc"]["rate_msps"] - 1e-9)
    return MACRO_LATENCY + share * per


def layer_outputs(st: dict) -> int:
    """The most outputs a tile of layer step ``st`` has: what it brings to an ADC it shares with
    other tiles of the layer (:func:`layer_adcs`)."""
    return max(t["col1"] - t["col0"] for t in st["tiles"])


def layer_adcs(st: dict, m: int, g: int = 1) -> int:
    """The ADCs of layer step ``st``'s tiles at ``m`` outputs an ADC: each tile's own
    ``ceil(cols / m)``, or, where an ADC serves ``g`` > 1 of its tiles (``m`` = ``g`` times
    :func:`layer_outputs`: the ADC's channels are those tiles' outputs, a tile with fewer padded to
    as many), ``ceil(tiles / g)``."""
    if g > 1:
        return -(-len(st["tiles"]) // g)
    return sum(-(-(t["col1"] - t["col0"]) // m) for t in st["tiles"])


def adc_balance(prog: dict, lanes: int, stages: int, pdk, share: int, outputs: int,
                across: int = 0) -> list[tuple[int, int]]:
    """Every step's outputs per ADC and tiles per ADC, ``(m, g)``, under ``compile --adc-balance on``:
    a layer whose pipeline stage has slack shares its ADCs among more outputs. From ``share`` on
    every layer, each layer in turn (the layers with the most ADCs at ``share`` first) takes, of
    ``share``, the divisors of the tile's ``outputs`` above it (``g`` 1) and, up to ``across``
    channels an ADC (0: none), ``g`` times :func:`layer_outputs` for ``g`` from 2 (one ADC serves
    ``g`` of its tiles; all of a layer's tiles read at once), the one that leaves the fewest ADCs
    (:func:`layer_adcs`; the smaller share of two that leave as many, each tile's own ADCs before
    shared ones) while the pipeline's interval (:func:`rtl_cycles` over ``stages``, its stages cut
    again and the steps' lanes chosen again) stays within the interval at ``share``; then, as long
    as one can, a layer takes a share with fewer ADCs that the others' choices (and the stages cut
    again) leave room for. Fewer ADCs for as many inputs a second, one input's latency longer by
    the conversions added. With one stage every conversion adds to the interval, so no layer
    changes. The choices with ADCs across tiles are kept only where the chip has fewer ADCs in all
    than with each tile's own."""
    def interval(sh: list[int]) -> int:
        lat = [macro_latency(pdk, m) for m in sh]
        return rtl_cycles(prog, step_lanes(prog, lanes, lat), lat, stages)["interval"]

    steps = prog["steps"]
    target = interval([share] * len(steps))
    more = [m for m in range(share + 1, outputs + 1) if outputs % m == 0]
    layers = sorted((k for k, st in enumerate(steps) if st["kind"] == "layer"),
                    key=lambda k: (-layer_adcs(steps[k], share), k))

    def balance(cap: int) -> tuple[int, list[tuple[int, int]]]:
        chosen = [(share, 1)] * len(steps)
        # each layer's choices by the ADCs they leave, fewest first
        cands = {}
        for k in layers:
            st, u = steps[k], layer_outputs(steps[k])
            cross = [(g * u, g) for g in range(2, len(st["tiles"]) + 1) if g * u <= cap]
            cands[k] = sorted([(share, 1)] + [(m, 1) for m in more] + cross,
                              key=lambda c: (layer_adcs(st, *c), c))

        def fits(k: int, c: tuple[int, int]) -> bool:
            return interval([m for m, _ in chosen[:k]] + [c[0]] + [m for m, _ in chosen[k + 1:]]) <= target

        for k in layers:
            chosen[k] = next(c for c in cands[k] if c == (share, 1) or fits(k, c))
        changed = True
        while changed:      # each change leaves fewer ADCs: it ends
            changed = False
            for k in layers:
                now = layer_adcs(steps[k], *chosen[k])
                c = next((c for c in cands[k] if layer_adcs(steps[k], *c) < now and fits(k, c)), None)
                if c is not None:
                    chosen[k], changed = c, True
        return sum(layer_adcs(steps[k], *chosen[k]) for k in layers), chosen

    own = balance(0)
    wide = balance(across) if across else own
    return (wide if wide[0] < own[0] else own)[1]


#: Clocks of a read beyond the macro's latency (measured in rtl-sim, exact): the sequencer's start
#: register (raised with the last gather, or with the last store of a position whose successor is
#: gathered; the tile wrapper passes it to the macro as conv_start) and the sequencer's step on
#: seeing every tile's done. The macro registers its codes and raises conv_done on the edge its last
#: conversion ends, ``latency`` clocks after conv_start (it took a clock more, 3 in all, to stop 52)
READ_OVERHEAD = 2
#: ... and of a read of a layer that stores each position while its tiles read the next
#: (:func:`stores_overlap`): the next position's last gather asks for its read, and the tiles start
#: it on the edge the sequencer sees this one's done (their wrappers latch its codes on that edge),
#: so a read follows the previous one a clock after the macro's latency; the first read of such a
#: layer takes a clock more (its start register after the first gather)
ARMED_OVERHEAD = 1


def rtl_cycles(prog: dict, lanes: int | list[int], latency: int | list[int], stages: int = 1) -> dict:
    """Clock cycles of one input through the chip top, by what the sequencer does: the host link
    (a code a clock each way), the layers' gather (``lanes`` DAC codes a clock; a layer of several
    positions gathers the next one, and where :func:`stores_overlap` stores the previous one, while
    its tiles read, so only its first gather, its last stores and what outlasts a read count), tile reads
    (``read``: the macro's ``latency``; ``handshake``: the sequencer's clocks around it), the
    requantizers' stores (``lanes`` outputs a clock), a recurrent layer's state update (a unit a
    clock; its gather and stores take one a clock), pooling (each window element a clock,
    ``lanes`` outputs at once), the elementwise and the data-movement units (``lanes`` a clock).
    ``total`` is the clocks of one input through the chip; time the host spends on its own segments
    is not in it. With ``stages`` > 1 the program runs as a pipeline (:func:`pipeline_stages`):
    ``stages`` lists each stage's steps and clocks, ``latency`` is one input's clocks through all
    of them (``total`` plus a handover clock a stage boundary) and ``interval`` the clocks between
    successive inputs in a steady stream (the slowest stage's period); with one stage both are
    ``total``. ``amsc rtl-sim`` measures both. ``lanes``: every step's (:func:`step_lanes`), or one
    count for all; ``latency``: every step's (:func:`step_latency`), or one for all."""
    steps = [step_cycles(st, n, lat) for st, n, lat in zip(prog["steps"], _per_step(prog, lanes),
                                                            step_latency(prog, latency))]
    c = {key: sum(s[key] for s in steps) for key in CYCLE_KINDS}
    c["total"] = sum(c.values())
    cuts = pipeline_stages(prog, [sum(x.values()) for x in steps], stages)
    if len(cuts) == 1:
        c["latency"] = c["interval"] = c["total"]
        return c
    per = [sum(sum(steps[i].values()) for i in range(a, b)) for a, b in cuts]
    c["stages"] = [{"steps": [a, b], "cycles": t, "read": sum(steps[i]["read"] for i in range(a, b)),
                    "period": t + _handovers(s, len(cuts))} for s, ((a, b), t) in enumerate(zip(cuts, per))]
    c["latency"] = c["total"] + len(cuts) - 1
    c["interval"] = max(x["period"] for x in c["stages"])
    return c


#: The kinds of clocks :func:`step_cycles` counts
CYCLE_KINDS = ("link", "gather", "handshake", "read", "store", "cell", "pool", "elementwise", "remap")


def step_cycles(st: dict, lanes: int, latency: int) -> dict:
    """One program step's clocks by kind (:func:`rtl_cycles`)."""
    c = dict.fromkeys(CYCLE_KINDS, 0)
    k = st["kind"]
    if k in ("recv", "send"):
        c["link"] += int(np.prod((st["dst"] if k == "recv" else st["src"])["shape"]))
    elif k == "layer":
        p, rec = st["positions"], st.get("recur")
        g, sc = _gather_store(st, 1 if rec else lanes)
        c["read"] += p * latency
        if stores_overlap(st, lanes, latency):
            for key, n in _overlapped(p, g, sc, latency, armed_reads(st, lanes, latency)).items():
                c[key] += n
        elif overlaps(st):   # only the first position's gather and what outlasts a read are exposed
            wait = latency + READ_OVERHEAD     # the clocks a read holds the sequencer
            c["handshake"] += p * READ_OVERHEAD
            c["gather"] += g + (p - 1) * max(0, SETTLE + g - wait)
            c["store"] += p * sc
        else:
            c["handshake"] += p * READ_OVERHEAD
            c["gather"] += p * g
            c["store"] += p * sc
        if rec:
            c["cell"] += p * rec["hidden"]
    elif k == "pool":
        c["pool"] += -(-int(np.prod(st["dst"]["shape"])) // lanes) * int(np.prod(st["kernel"]))
    elif k in ("add", "lut", "mul"):
        c["elementwise"] += -(-int(np.prod(st["dst"]["shape"])) // lanes)
    elif k == "remap":
        c["remap"] += -(-int(np.prod(st["dst"]["shape"])) // lanes)
    return c


def _gather_store(st: dict, lanes: int) -> tuple[int, int]:
    """A layer step's gather and store clocks a position at ``lanes``."""
    return -(-st["rows"] // lanes), -(-st["cols"] // store_lanes(st, lanes))


def _overlapped(p: int, g: int, sc: int, latency: int, armed: bool) -> dict:
    """The handshake, gather and store clocks of a layer of ``p`` positions that stores each one
    while its tiles read the next (:func:`stores_overlap`; ``g`` gather and ``sc`` store clocks a
    position, reads of ``latency``). A read of position q also does q - 1's stores, then q + 1's
    gather, which writes SETTLE clocks into the read at the earliest; what outlasts the read is
    exposed (stores first, then the gather and any clocks it waited). Not ``armed``, the sequencer
    steps on q's done once q + 1 is gathered and raises the start register (READ_OVERHEAD), and the
    stores begin as the read does. ``armed`` (:func:`armed_reads`), q + 1's last gather asks for its
    read, which the tiles start on the edge q's done is seen (ARMED_OVERHEAD; the first read a clock
    more), the edge that latches q's codes, so the stores begin a clock into the read."""
    over = ARMED_OVERHEAD if armed else READ_OVERHEAD
    wait = latency + over     # the clocks a read holds the sequencer
    c = {"handshake": p * over + (1 if armed else 0), "gather": g, "store": sc}
    # (previous stores, next gather, how many reads): the first, the middle ones, the last
    for prev, nxt, n in ((0, g, 1), (sc, g, p - 2), (sc, 0, 1)):
        first = prev + 1 if armed and prev else prev     # the clock the next gather may begin
        extra = max(0, (max(first, SETTLE) if nxt else prev) + nxt - wait)
        c["store"] += n * min(prev, extra)
        c["gather"] += n * (extra - min(prev, extra))
    return c


def armed_reads(st: dict, lanes: int, latency: int) -> bool:
    """Whether a layer step that stores while its tiles read (:func:`stores_overlap`) asks for each
    next read with its last gather (tile_wrapper.v.j2, top.v.j2: ``go``): where its reads outlast its
    stores and gathers, a clock fewer a read; where those outlast the reads, the stores' later start
    would cost a clock a read, and the sequencer starts each read from its step on the previous
    one's done instead (the fewer clocks of the two)."""
    if not stores_overlap(st, lanes, latency):
        return False
    p = st["positions"]
    g, sc = _gather_store(st, lanes)
    return (sum(_overlapped(p, g, sc, latency, True).values())
            < sum(_overlapped(p, g, sc, latency, False).values()))


def _handovers(s: int, n: int) -> int:
    """Clocks of stage ``s`` of ``n`` outside its steps, a period: the first stage's finished state
    (its result waits there until the next stage takes it), a middle stage's finished and waiting
    states, the last stage's waiting state (where it takes the previous stage's result)."""
    return 1 if s in (0, n - 1) else 2


def pipeline_stages(prog: dict, cost: list[int], stages: int) -> list[tuple[int, int]]:
    """The program's steps split into at most ``stages`` runs of consecutive steps ``[a, b)``, the
    split that makes the slowest stage's period (:func:`_handovers` included) the shortest, by each
    step's clocks ``cost`` (:func:`step_cycles`, as :func:`rtl_cycles` counts them). A
    boundary may not fall between two steps that write the same map. One stage (the whole program)
    when ``stages`` is 1; more need a program of one chip segment (one stream in, one out; the host
    may run before and after it, but with host segments between chip segments the host's turn is
    part of every input) -- ValueError otherwise."""
    steps = prog["steps"]
    n = len(steps)
    if stages <= 1 or n < 2:
        return [(0, n)]
    kinds = [st["kind"] for st in steps]
    # the host may run segments before the chip's stream in and after its stream out, not between
    if kinds.count("recv") != 1 or kinds.count("send") != 1 or "host" in kinds[kinds.index("recv"):kinds.index("send")]:
        raise ValueError("a pipeline needs a chip of one segment (one stream in, one out); this design has "
                         "host segments between chip segments")
    writer = {}
    for i, st in enumerate(steps):
        if "dst" in st and st["kind"] != "send":
            writer.setdefault(st["dst"]["name"], []).append(i)
    # no boundary inside the span of a map's writers
    blocked = {j for ws in writer.values() for j in range(min(ws) + 1, max(ws) + 1)}
    # every stage runs chip steps: the host's steps before the stream in and after the stream out
    # stay with the first and the last stage
    allowed = [j for j in range(kinds.index("recv") + 1, kinds.index("send") + 1) if j not in blocked]
    k = min(stages, len(allowed) + 1)
    pre = np.concatenate([[0], np.cumsum(cost)])
    ends = [0] + allowed + [n]
    # best[s][e]: the shortest slowest period covering steps [0, ends[e]) in s + 1 stages, the last ending at ends[e]
    inf = float("inf")
    best = [[inf] * len(ends) for _ in range(k)]
    back = [[0] * len(ends) for _ in range(k)]
    for e in range(1, len(ends)):
        best[0][e] = pre[ends[e]] - pre[0]
    for s in range(1, k):
        for e in range(s + 1, len(ends)):
            for d in range(s, e):
                v = max(best[s - 1][d], pre[ends[e]] - pre[ends[d]])
                if v < best[s][e]:
                    best[s][e], back[s][e] = v, d
    # the stage count whose periods (with their handover clocks) are the shortest; fewer on a tie
    choice = None
    for s in range(k):
        if best[s][-1] == inf:
            continue
        bounds, e = [], len(ends) - 1
        for q in range(s, 0, -1):
            d = back[q][e]
            bounds.append(ends[d])
            e = d
        cuts = list(zip([0] + bounds[::-1], bounds[::-1] + [n]))
        period = max(int(pre[b] - pre[a]) + _handovers(q, len(cuts)) for q, (a, b) in enumerate(cuts))
        if choice is None or period < choice[0]:
            choice = (period, cuts)
    return choice[1]


def overlaps(st: dict) -> bool:
    """Whether a layer step gathers its next position while its tiles read this one: a layer of
    several positions (a convolution's pixels, a per-token layer's tokens); a recurrent layer's next
    step reads the state this one makes, so it gathers after."""
    return st["positions"] > 1 and not st.get("recur")


def stores_overlap(st: dict, lanes: int, latency: int) -> bool:
    """Whether a layer step that :func:`overlaps` also stores each position while its tiles read the
    next: its stores must end before that read's done replaces the latched ADC codes, so they may
    take at most ``latency`` clocks (the macros')."""
    return overlaps(st) and -(-st["cols"] // store_lanes(st, lanes)) <= latency


def store_lanes(st: dict, lanes: int) -> int:
    """The output columns a layer step requantizes a clock: its ``lanes``, at most its columns, and
    whole groups where it keeps a pooling's maximum of each group of columns (qmodel._pool_group;
    a group's codes meet in one clock)."""
    g = st.get("group") or 1
    return min(st["cols"], -(-lanes // g) * g)


#: A map is interleaved only from this many words a part: below it the parts' crossbars cost about
#: what the ports they save do (cnn_digits' 10-word output stays one array)
INTERLEAVE_MIN_WORDS = 8


def _step_maps(st: dict) -> list[dict]:
    """Every map a program step names (its source, second source, sources and destination)."""
    return [m for m in [st.get("src"), st.get("src2"), st.get("dst")] + list(st.get("srcs", [])) if m]


def _stores_in_runs(st: dict) -> bool:
    """Whether a layer step's store lanes write columns j.. of one position (:func:`map_interleave`):
    not a recurrent or per-token layer's, nor one keeping a pooling's maximum of each group."""
    return not st.get("recur") and not st.get("tokens") and not st.get("group")


def _gathers_in_runs(st: dict) -> bool:
    """Whether a layer step's gather lanes read consecutive elements (a dense layer) or channels c..
    of one pixel (a 1x1 convolution) (:func:`map_interleave`)."""
    return not st.get("recur") and not st.get("tokens") and (st["conv"] is None or list(st["conv"]["kernel"]) == [1, 1])


def _stores_coords(st: dict) -> tuple[int, int, int] | None:
    """A convolution's stores by output coordinates (:func:`map_interleave`'s third pattern): the map's
    (channels, rows, cols) when the layer stores its own output grid into it, whole or as a
    concatenation's channels (lanes: channels j.. of one pixel (yb, xb)); None otherwise. A layer
    keeping a pooling's maximum of each group of columns (qmodel._pool_group) stores the pooled map,
    which it names (C, 1, P) and the next layer (C, H, W) of its grid: by those coordinates, a lane
    a group (channels j / group..)."""
    if st.get("recur") or st.get("tokens") or st["conv"] is None or len(st["dst"]["shape"]) != 3:
        return None
    c, h, w = st["dst"]["shape"]
    if st.get("group"):
        h, w = st.get("grid") or [h, w]
        if c * h * w != int(np.prod(st["dst"]["shape"])):
            return None
    elif list(st.get("grid") or [h, w]) != [h, w]:
        return None
    if st["positions"] != h * w or st.get("base", 0) % (h * w):
        return None
    return c, h, w


def _gathers_coords(st: dict) -> bool:
    """Whether a convolution's gather lanes read by coordinates (channel, row, col) of its window the
    third pattern separates: kernel elements in (channel, kernel row, kernel col) order, undilated."""
    return (not st.get("recur") and not st.get("tokens") and st["conv"] is not None
            and list(st["conv"].get("dilation", [1, 1])) == [1, 1] and len(st["src"]["shape"]) == 3)


def _coord_params(sites: list[tuple], b: int) -> dict | None:
    """The part function ``((x >> log2 s) + alpha (y >> log2 s) + gamma c) mod b`` that separates the
    lanes of every coordinate site of one map (:func:`map_interleave`), or None. A kxk gather's lanes
    are consecutive in (c, kernel row, kernel col): ``s = 1``, ``alpha = kw``, ``gamma = kh kw``; a
    pooling's are consecutive outputs (c, y, x) at one window offset, reading ``(s y + dy, s x + dx)``
    (``s`` a power of two): ``alpha = Wo`` and ``gamma = Ho Wo`` (or, when no lane group crosses a
    channel, any); stores and 1x1 gathers put their lanes on consecutive channels of one pixel: an
    odd ``gamma`` (where only those touch the map: ``s = alpha = gamma = 1``); an element-wise unit's
    lanes (a pooling's, add's, table's, product's or data-movement unit's outputs, an add's, table's
    or product's operands) are consecutive columns of one row where the row holds a whole number of
    lane groups: ``s = 1``, any ``alpha`` and ``gamma``."""
    s = alpha = gamma = None
    odd = False
    for x in sites:
        kind = x[0]
        if x[1] <= 1:
            continue        # one lane a clock: nothing to separate
        if kind in ("store", "1x1", "recv"):
            odd |= x[1] > 1
            continue
        if kind == "row":   # an element-wise unit's lanes: consecutive columns of one row
            want = (1, None, None)
        elif kind == "kxk":
            _, _, kh, kw = x
            want = (1, kw % b, (kh * kw) % b)
        else:
            _, ln, sp, ho, wo = x
            want = (sp, wo % b, (ho * wo) % b if (ho * wo) % ln else None)
        if s is not None and want[0] != s:
            return None
        s = want[0]
        if want[1] is not None:
            if alpha is not None and alpha != want[1]:
                return None
            alpha = want[1]
        if want[2] is not None:
            if gamma is not None and gamma != want[2]:
                return None
            gamma = want[2]
    s = 1 if s is None else s       # stores and 1x1 gathers only: the channel alone separates their lanes
    alpha = 1 if alpha is None else alpha
    gamma = 1 if gamma is None else gamma
    if odd and gamma % 2 == 0:
        return None
    return {"s": s, "alpha": alpha, "gamma": gamma}


def interleave_coord(c, y, x, b: int, coord: dict):
    """The part and word of element (channel ``c``, row ``y``, col ``x``) of a map interleaved by
    coordinates (:func:`map_interleave`): part ``((x >> ls) + alpha (y >> ls) + gamma c) mod b``, word
    ``(((c H + y) Xw + (x >> (ls + lb))) << ls) | (x mod s)`` (``s = 2^ls``, ``b = 2^lb``, ``Xw`` the
    row's words ``ceil(W / (s b))``): within a part, the word and the part give back (c, y, x)."""
    ls, lb = coord["s"].bit_length() - 1, b.bit_length() - 1
    part = ((x >> ls) + coord["alpha"] * (y >> ls) + coord["gamma"] * c) % b
    word = (((c * coord["H"] + y) * coord["xw"] + (x >> (ls + lb))) << ls) | (x & (coord["s"] - 1))
    return part, word


def map_interleave(prog: dict, lanes: int | list[int]) -> dict[str, dict]:
    """The feature maps kept as ``B`` interleaved parts instead of one array: ``{map: {"B", "skew"}}``.

    A unit's lanes each read or write an address of a map a clock, so a map of one array has a port
    for every lane of every unit that touches it (cnn_digits' conv2 output: 4 write and 4 read
    ports, each a decoder or a read tree over all its words). Where the lanes' addresses of every
    such unit are, in each clock, in different parts of the map, the map can be ``B`` arrays (``B``
    its units' most lanes, a power of two), each with one port per unit: lane ``l`` goes to part
    ``bank(a)`` at word ``a >> log2(B)``, through a crossbar of ``B`` ports per unit. Two address
    patterns are conflict-free this way (Budnik and Kuck's skewed storage, "The organization and use
    of parallel memories", IEEE Trans. Computers C-20(12), 1971):

    - consecutive addresses, ``lanes`` a clock from 0 (a dense layer's gather, a store of a
      layer of one position, the host link's single lane): ``bank(a) = a mod B``;
    - a stride ``P`` between lanes (a convolution's stores, output channel ``j`` of position ``pos``
      at ``j * P + pos``; a 1x1 convolution's gather, channel ``c`` at ``c * H * W + pixel``):
      ``a mod B`` when ``P`` is odd, and when ``P`` is a multiple of ``B`` (a power of two, so the
      part costs no divider), the skewed ``bank(a) = (a + a div P) mod B`` (``skew``: log2 P),
      under which consecutive aligned runs stay conflict-free too.

    A map qualifies when every unit touching it is the host link, a layer's stores (not a
    recurrent, per-token or pooling-keeping layer), a dense or 1x1 layer's gather, the output of a
    pooling, add, table, product or data-movement unit or the operands an add, a table or a
    product (its first) reads element by element, with one of those patterns; at least
    ``INTERLEAVE_MIN_WORDS`` words a part.

    A third pattern takes the maps a kxk convolution's gather or a pooling's window reads, where
    the lanes' addresses are runs of kernel columns or a stride apart and no function of the
    address alone separates them without a divider: the units' own coordinates do. Where every
    unit touching a map is a convolution's stores (its own grid, channels j.. of one pixel), a
    convolution's gather, a pooling's reads, the host link's receive (one code a clock, its
    coordinates divided out of its count) or an element-wise unit whose lane groups fit a row (its
    count divided into (c, y, x), lane l at column x + l), the part is ``((x >> log2 s) + alpha (y >> log2 s)
    + gamma c) mod B`` of the element's (channel, row, col) (:func:`_coord_params`), its word
    :func:`interleave_coord`'s (``coord``: s, alpha, gamma and the map's C, H, W, Xw). Its clocks do
    not change either."""
    per = _per_step(prog, lanes)
    # map -> (lanes, stride between lanes (1: consecutive), base, runs from 0 in steps of a power of two)
    sites: dict[str, list[tuple[int, int, int, bool]]] = {}
    bad: set[str] = set()
    # map -> its units' sites by coordinates (the third pattern); a map any other unit touches has none
    csites: dict[str, list[tuple]] = {}
    cbad: set[str] = set()
    views: dict[str, set[tuple]] = {}     # map -> the shapes the steps name it in
    for k, st in enumerate(prog["steps"]):
        kind, n, cown = st["kind"], per[k], set()
        view: dict[str, tuple] = {}         # a map this step addresses by other coordinates than its shape's
        if kind == "recv" and len(st["dst"]["shape"]) == 3:   # the host link: one code a clock
            cown.add(st["dst"]["name"])
            csites.setdefault(st["dst"]["name"], []).append(("recv", 1))
        elif kind == "pool" and len(st["src"]["shape"]) == 3:
            sy, sx = st["stride"]
            size = int(np.prod(st["dst"]["shape"]))
            if min(n, size) == 1 or sy == sx and sy & (sy - 1) == 0:
                cown.add(st["src"]["name"])
                csites.setdefault(st["src"]["name"], []).append(("pool", min(n, size), sy, *st["dst"]["shape"][1:]))
        elif kind == "layer":
            if _stores_coords(st):
                cown.add(st["dst"]["name"])
                view[st["dst"]["name"]] = _stores_coords(st)
                csites.setdefault(st["dst"]["name"], []).append(("store", store_lanes(st, n) // (st.get("group") or 1)))
            if _gathers_coords(st):
                cown.add(st["src"]["name"])
                kh, kw = st["conv"]["kernel"]
                lg = min(n, st["rows"])
                csites.setdefault(st["src"]["name"], []).append(("1x1", lg) if (kh, kw) == (1, 1) else ("kxk", lg, kh, kw))
        if kind in ("pool", "add", "lut", "mul", "remap"):
            # an element-wise unit's lanes make (and an add, a table or a product's first operand
            # reads) elements lix = idx + lane of the same (c, y, x): one row's columns where the
            # lane groups, aligned from 0, fit a row whole
            ln = min(n, int(np.prod(st["dst"]["shape"])))
            for m in [st["dst"]] + ([st["src"]] if kind in ("add", "lut", "mul") else []) + \
                     ([st["src2"]] if kind == "add" else []):
                if len(m["shape"]) == 3 and list(m["shape"]) == list(st["dst"]["shape"]) and m["shape"][2] % ln == 0:
                    cown.add(m["name"])
                    csites.setdefault(m["name"], []).append(("row", ln))
        if kind != "host":
            cbad |= {m["name"] for m in _step_maps(st)} - cown
            for m in _step_maps(st):
                views.setdefault(m["name"], set()).add(tuple(view.pop(m["name"], m["shape"])))
    # a map some step views in another shape (a global pooling's [C, H W, 1]) has no one (c, y, x)
    cbad |= {name for name, v in views.items() if len(v) > 1}
    for k, st in enumerate(prog["steps"]):
        kind, n, own = st["kind"], per[k], set()
        if kind == "host":
            continue
        if kind == "recv":
            own.add(st["dst"]["name"])
            sites.setdefault(st["dst"]["name"], []).append((1, 1, 0, True))
        elif kind == "send":
            own.add(st["src"]["name"])
            sites.setdefault(st["src"]["name"], []).append((1, 1, 0, True))
        elif kind in ("pool", "add", "lut", "mul", "remap"):
            # these write their outputs in order, lix = idx + lane from 0; an add, a table and a
            # product's first operand read theirs the same way
            size = int(np.prod(st["dst"]["shape"]))
            ln = min(n, size)
            run = (ln, 1, 0, ln & (ln - 1) == 0 or ln >= size)
            own.add(st["dst"]["name"])
            sites.setdefault(st["dst"]["name"], []).append(run)
            for m in [st["src"]] + ([st["src2"]] if kind == "add" else []) if kind in ("add", "lut", "mul") else []:
                own.add(m["name"])
                sites.setdefault(m["name"], []).append(run)
            if kind == "mul":     # its second operand, broadcast, at any address (even the first's map)
                bad.add(st["src2"]["name"])
        elif kind == "layer":
            if _stores_in_runs(st):
                p, ls = st["positions"], store_lanes(st, n)
                own.add(st["dst"]["name"])
                sites.setdefault(st["dst"]["name"], []).append((ls, p if p > 1 else 1, st.get("base", 0),
                                                               ls & (ls - 1) == 0 or ls >= st["cols"]))
            if _gathers_in_runs(st):
                lg = min(n, st["rows"])
                own.add(st["src"]["name"])
                stride = 1 if st["conv"] is None else int(np.prod(st["src"]["shape"][1:]))
                sites.setdefault(st["src"]["name"], []).append((lg, stride, 0, lg & (lg - 1) == 0 or lg >= st["rows"]))
        bad |= {m["name"] for m in _step_maps(st)} - own
    sizes = {m["name"]: int(np.prod(m["shape"])) for st in prog["steps"] for m in _step_maps(st)}
    out = {}
    for name, ss in sorted(sites.items()):
        multi = [x for x in ss if x[0] > 1]
        if name in bad or not multi:
            continue
        b = 1 << (max(x[0] for x in multi) - 1).bit_length()
        if sizes[name] < INTERLEAVE_MIN_WORDS * b:
            continue
        strides = {x[1] for x in multi}
        if all(math.gcd(x, b) == 1 for x in strides):
            out[name] = {"B": b, "skew": None}
            continue
        wide = strides - {1}
        d = next(iter(wide)) if len(wide) == 1 else 0
        if (d and d & (d - 1) == 0 and d % b == 0 and d < sizes[name]
                and all(x[2] % d == 0 and (x[1] == d or x[3]) for x in multi)):
            out[name] = {"B": b, "skew": d.bit_length() - 1}
    for name, ss in sorted(csites.items()):
        multi = [x[1] for x in ss if x[1] > 1]
        if name in out or name in cbad or not multi:
            continue
        b = 1 << (max(multi) - 1).bit_length()
        par = _coord_params(ss, b)
        if par is None or sizes[name] < INTERLEAVE_MIN_WORDS * b:
            continue
        c, h, w = next(iter(views[name]))
        out[name] = {"B": b, "skew": None, "coord": {**par, "C": c, "H": h, "W": w, "xw": -(-w // (par["s"] * b))}}
    return out


def part_words(x: dict, size: int) -> int:
    """The words of each part of a map of ``size`` elements interleaved as ``x`` (:func:`map_interleave`):
    the address's high bits, or by coordinates every (channel, row) its row of ceil(W / (s B)) words
    of ``s`` elements (:func:`interleave_coord`)."""
    co = x.get("coord")
    if co:
        return co["C"] * co["H"] * co["xw"] * co["s"]
    return ((size - 1) >> (x["B"].bit_length() - 1)) + 1


def _two_reads(prog: dict) -> set[str]:
    """Maps a unit reads twice in one clock (an add of a map to itself): one read port a part is not enough."""
    return {st["src"]["name"] for st in prog["steps"] if st["kind"] == "add" and st["src"]["name"] == st["src2"]["name"]}


def map_memories(prog: dict, lanes: int | list[int], cuts, sram: dict | None, mode: str,
                 clock_mhz: float) -> dict[str, dict]:
    """The interleaved maps (:func:`map_interleave`) whose parts are SRAM macros, ``{map: {"B", "banks",
    "words", "width", "macros"}}``: every part (and pipeline bank, :func:`stage_banks`) one macro module
    of ``words`` x ``width``, built of ``macros`` of the PDK's (``sram``: its ``ppa.sram``) in all.

    A part has one read and one write port, as the macro: each clock a unit writes a word (captured at
    the clock's rising edge) and reads one (its address captured at the falling edge, the data there
    before the next rising edge), which the macro does clocked at twice the chip's clock (rtl
    ``<design>_sram.v``). ``mode``: "sram" every interleaved map (ValueError when the PDK has no macro
    or it cannot run at twice ``clock_mhz``), "flops" none, "auto" each map whose parts take less area
    as macros (``area_um2`` each, ``words`` x ``width`` bits) than as flip-flops (``flop_bit_um2`` a
    bit, the report's register-file model of a part of one read and one write port)."""
    if mode == "flops":
        return {}
    if sram is None or 2 * clock_mhz > sram["max_mhz"]:
        if mode == "sram":
            raise ValueError("the PDK has no SRAM macro (ppa.sram)" if sram is None else
                             f"the PDK's SRAM macro runs at {sram['max_mhz']:g} MHz at most, not twice the "
                             f"{clock_mhz:g} MHz clock")
        return {}
    per = _per_step(prog, lanes)
    ilv = map_interleave(prog, per)
    banks = stage_banks(prog, cuts or [(0, len(prog["steps"]))])
    twice = _two_reads(prog)
    shapes = {m["name"]: m for st in prog["steps"] for m in _step_maps(st)}
    out = {}
    for name, x in sorted(ilv.items()):
        if name in twice:
            continue
        m = shapes[name]
        words = part_words(x, int(np.prod(m["shape"])))
        n = -(-words // int(sram["words"])) * -(-m["bits"] // int(sram["width"]))
        if mode == "auto" and n * sram["area_um2"] >= words * m["bits"] * sram["flop_bit_um2"]:
            continue
        k = banks[name][1] - banks[name][0] + 1 if name in banks else 1
        out[name] = {"B": x["B"], "banks": k, "words": words, "width": m["bits"], "macros": x["B"] * k * n}
    return out


def interleave_bank(a: np.ndarray | int, b: int, skew: int | None):
    """The part of address ``a`` in a map interleaved over ``b`` parts (:func:`map_interleave`)."""
    return (a + (a >> skew if skew is not None else 0)) % b


def _column_slots(tiles: list[dict], cols: int, ba: int) -> list[list[str | None]]:
    """A layer's tiles in slots of tiles apart in columns (first fit in row order: a grid's row
    bands), each slot as its ADC code of every output column (a Verilog part-select of the tile's
    bus, None where no tile of the slot has the column): a column's partial sums are one code of
    each slot."""
    slots: list[list[str | None]] = []
    for t in sorted(tiles, key=lambda t: (t["row0"], t["col0"], t["name"])):
        slot = next((s for s in slots if all(s[j] is None for j in range(t["col0"], t["col1"]))), None)
        if slot is None:
            slot = [None] * cols
            slots.append(slot)
        for j in range(t["col0"], t["col1"]):
            slot[j] = _adc_code(t, j, ba)
    return slots


def _adc_code(t: dict, j: int, ba: int) -> str:
    """Output column ``j``'s ADC code on tile ``t``'s bus: a part-select of its ``ba``-bit codes."""
    lo = (j - t["col0"]) * ba
    return f"adc_{t['name']}[{lo + ba - 1}:{lo}]"


def _bits(n: int) -> int:
    return max(1, math.ceil(math.log2(max(2, n))))


def chain_order(ir: IR) -> list[str]:
    """Tiles in schedule order: the order of the scan chain from scan_in to scan_out."""
    order = {n: k for k, n in enumerate(ir.topo())}
    return sorted(ir.nodes_of("xbar_tile"), key=lambda n: (ir.g.nodes[n]["attrs"]["step"], order[n]))


def _tile_ctx(ir: IR, prefix: str, pdk, level_bits: int, bipolar: frozenset = frozenset()) -> list[dict]:
    """Per tile: names, sizes and bus widths. A tile in ``bipolar`` reads signed DAC codes of
    ``dac_bits + 1`` bits (two's complement; the DAC drives the word line to either sign)."""
    tiles = []
    for k, t in enumerate(chain_order(ir)):
        a = ir.g.nodes[t]["attrs"]
        rows, cols = a["row1"] - a["row0"], a["col1"] - a["col0"]
        code = pdk.dac_bits + 1 if t in bipolar else pdk.dac_bits
        prows, pcols = a["tile_rows"], a["tile_cols"] // 2
        rb, cb = route_widths(prows, pcols)
        route = route_bits(rows, cols, prows, pcols)
        share = tile_adc_share(ir, t)
        tiles.append({
            "index": k, "name": t, "step": a["step"], "rows": rows, "cols": cols,
            # outputs per ADC and the macro's read in clocks: the design's, or its layer's (--adc-balance)
            "share": share, "latency": macro_latency(pdk, share),
            "prows": prows, "pcols": pcols, "rsel_bits": rb, "csel_bits": cb, "route_bits": route,
            "bipolar": t in bipolar,
            "dac_code_bits": code, "adc_width": cols * pdk.adc_bits,
            "grid": a["grid"], "layer": a["layer"],
            "scan_bits": prows * pcols * 2 * level_bits + route,
        })
    return tiles


def route_widths(prows: int, pcols: int) -> tuple[int, int]:
    """Bits of a tile's routing register fields: the physical word line of each input row, and the
    physical pair of each output column."""
    return _bits(prows), _bits(pcols)


def route_bits(rows: int, cols: int, prows: int, pcols: int) -> int:
    """A tile's routing register: the word line of each input row and the pair of each output
    column (a word line no row is routed to is never written and holds code 0)."""
    rb, cb = route_widths(prows, pcols)
    return rows * rb + cols * cb


def tile_route(t: dict) -> np.ndarray:
    """A program tile's routing register contents, bit 0 first: the physical word line of each input
    row, then the physical pair of each output column; a chip's placement (``wl``, ``bl``) or, for
    a design for no chip, the identity (row i on word line i, column j on pair j)."""
    rows, cols = t["row1"] - t["row0"], t["col1"] - t["col0"]
    rb, cb = route_widths(t["prows"], t["pcols"])
    wl = np.asarray(t.get("wl", np.arange(rows)), np.int64)
    bl = np.asarray(t.get("bl", np.arange(cols)), np.int64)
    return np.concatenate([_twos(wl, rb).reshape(-1), _twos(bl, cb).reshape(-1)])


#: Above this many scan-chain bits the simulation files (testbench, scan.mem, behavioural macros)
#: are not written: Icarus would hold one register bit per cell level for every tile, and the bit
#: stream alone is a line per bit. The synthesizable RTL is written at any size.
SIM_MAX_SCAN_BITS = 1 << 24


def requant_regs(prog: dict) -> list[dict]:
    """The requantizer registers on the scan chain, after the tiles, in chain order: one per layer,
    holding each output column's MQ (``mq_bits``, two's complement) and then its BQ (``bq_bits``),
    column 0 at bit 0; a recurrent layer's column holds MQ, BQ, then its recurrent side's MQH
    (``mq_bits``) and BQH (``bq_bits``) (``"recurrent": true``). A chip's calibration
    (passes/calibrate.py) changes only these contents, never the RTL."""
    return [{"layer": st["name"], "columns": st["cols"], "mq_bits": st["mq_bits"], "bq_bits": st["bq_bits"],
             "bits": st["cols"] * (st["mq_bits"] + st["bq_bits"]) * (2 if st.get("recur") else 1),
             **({"recurrent": True} if st.get("recur") else {})}
            for st in prog["steps"] if st["kind"] == "layer"]


def requant_fields(st: dict, reg: dict) -> list[tuple[str, np.ndarray, int]]:
    """The fields of a layer's requantizer register, in order within a column: ``(name, values,
    bits)``."""
    out = [("mq", st["mq"], reg["mq_bits"]), ("bq", st["bq"], reg["bq_bits"])]
    if reg.get("recurrent"):
        out += [("mqh", st["recur"]["mqh"], reg["mq_bits"]), ("bqh", st["recur"]["bqh"], reg["bq_bits"])]
    return out


def _twos(v, bits: int) -> np.ndarray:
    """[n, bits] uint8: the two's complement bits of each value of ``v``, least significant first."""
    u = np.asarray(v, np.int64).astype(np.uint64) & np.uint64((1 << bits) - 1)
    return ((u[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)


def _tile_scan(t: dict, level_bits: int) -> tuple[int, int]:
    """Bits of a program tile's two scan registers: its macro's level register (every physical cell)
    and its routing register."""
    return t["prows"] * t["pcols"] * 2 * level_bits, route_bits(t["row1"] - t["row0"], t["col1"] - t["col0"],
                                                                t["prows"], t["pcols"])


def scan_registers(prog: dict, tile_order: list[str]) -> list[tuple[str, int]]:
    """The registers of the scan chain in chain order, as the testbench's preload files name them:
    for the k-th tile of ``tile_order`` (its macro's TILE) ``("preload_t<k>.mem", bits)``, its
    macro's levels, then ``("preload_r<k>.mem", bits)``, its wrapper's routing register; then
    ``("preload_c<n>.mem", bits)`` for the n-th requantizer register (requant_regs)."""
    by_name = {t["name"]: t for st in prog["steps"] if st["kind"] == "layer" for t in st["tiles"]}
    out = []
    for k, name in enumerate(tile_order):
        levels, route = _tile_scan(by_name[name], prog["level_bits"])
        out += [(f"preload_t{k}.mem", levels), (f"preload_r{k}.mem", route)]
    return out + [(f"preload_c{n}.mem", r["bits"]) for n, r in enumerate(requant_regs(prog))]


def preload_files(stream: np.ndarray, registers: list[tuple[str, int]]):
    """``(file name, text)`` of every register's ``$readmemb`` preload file, from the scan stream
    (``scan_bits``, first bit first) cut at the registers' sizes: after the whole stream has shifted,
    a register holds the bits shifted in after those of the registers behind it, its first bit at
    bit 0. A tile's file has one bit per line (its macro's ring, bit 0 first); a requantizer
    register's one binary number, most significant bit first."""
    if stream.size != sum(b for _, b in registers):
        raise ValueError(f"scan stream of {stream.size} bits for registers of {sum(b for _, b in registers)}")
    end = stream.size
    for name, bits in registers:        # chain order: the first register holds the stream's last bits
        part = stream[end - bits:end]
        end -= bits
        yield name, scan_mem_text(part) if name.startswith("preload_t") else \
            (part[::-1] + ord("0")).astype(np.uint8).tobytes() + b"\n"


def scan_bits(prog: dict, tile_order: list[str]):
    """The bit stream to shift into scan_in, first bit first, that programs every tile's levels and
    routing and every layer's requantizer constants: one uint8 array per register, the last on the
    chain first (its bits travel through all the others): the requantizer registers in reverse, then
    the tiles in reverse, each tile's routing register (behind its macro on the chain) before its
    macro's levels. Within a register the first bit shifted in ends at bit 0. A macro holds its
    physical array, cell (word line p, pair q, side) in that order; the cells no row or column of the
    tile is routed to are written to level 0 (G_min)."""
    by_layer = {st["name"]: st for st in prog["steps"] if st["kind"] == "layer"}
    for r in reversed(requant_regs(prog)):
        st = by_layer[r["layer"]]
        yield np.concatenate([_twos(v, b) for _, v, b in requant_fields(st, r)], axis=1).reshape(-1)
    lb = prog["level_bits"]
    by_name = {t["name"]: t for st in prog["steps"] if st["kind"] == "layer" for t in st["tiles"]}
    for name in reversed(tile_order):
        t = by_name[name]
        yield tile_route(t)
        rows, cols = t["row1"] - t["row0"], t["col1"] - t["col0"]
        phys = np.zeros((t["prows"], t["pcols"], 2), np.uint32)
        phys[np.ix_(t.get("wl", np.arange(rows)), t.get("bl", np.arange(cols)))] = \
            np.stack([t["lpos"], t["lneg"]], axis=-1)
        lv = phys.reshape(-1)                                            # (p, q, side) order
        yield ((lv[:, None] >> np.arange(lb, dtype=np.uint32)) & 1).astype(np.uint8).reshape(-1)  # bit b of each


def scan_mem_text(bits: np.ndarray) -> bytes:
    """``$readmemb`` text of a bit array, one bit per line, formatted in bulk."""
    out = np.empty(2 * bits.size, np.uint8)
    out[0::2] = bits + ord("0")
    out[1::2] = ord("\n")
    return out.tobytes()


def _field(reg: str, lo: int, bits: int, width: int | None = None) -> str:
    """Bits ``[lo +: bits]`` of register ``reg``, a two's complement value (sign-extended to
    ``width`` bits if given)."""
    hi = lo + bits - 1
    if width is None or width == bits:
        return f"$signed({reg}[{hi}:{lo}])"
    return f"$signed({{{{{width - bits}{{{reg}[{hi}]}}}}, {reg}[{hi}:{lo}]}})"


def _lit(v: int) -> str:
    """A 64-bit signed Verilog literal."""
    return f"64'sd{v}" if v >= 0 else f"-64'sd{-v}"


def _act_ctx(unit: dict) -> dict:
    if unit["kind"] == "lut":
        half = 2 ** (unit["bits"] - 1)
        return {"kind": "lut", "bits": unit["bits"], "half": half,
                "entries": [{"i": i, "v": _lit(int(v))} for i, v in enumerate(unit["lut"])]}
    out = {"kind": unit["kind"], "lo": _lit(unit["lo"]), "hi": _lit(unit["hi"])}
    if unit["kind"] == "leaky":
        out.update(aq=_lit(unit["aq"]), sa=unit["sa"], half=_lit(1 << unit["sa"] >> 1))
    return out


def index_width(prog: dict, lanes: int = 1) -> int:
    """Bits of the datapath's counters and addresses' halves: 16, or more for a network with a
    feature map, a layer input or a position count of 2^16 or more (ResNet-50's first map holds 802,816);
    a counter also holds its last value plus the lanes."""
    sizes = [int(np.prod(prog["input"]["shape"]))]
    for st in prog["steps"]:
        if st["kind"] in ("send", "host"):
            continue
        sizes.append(int(np.prod(st["dst"]["shape"])))
        if st["kind"] == "layer":
            sizes += [st["rows"], st["cols"], st["positions"]]
    return max(16, _bits(max(sizes) + lanes + 1) + 1)


def _ext64(expr: str, m: dict) -> str:
    """A map element widened to a signed 64-bit value: sign-extended if the map is signed."""
    b = m["bits"]
    fill = f"{{{64 - b}{{{expr}[{b - 1}]}}}}" if m["signed"] else f"{64 - b}'d0"
    return f"$signed({{{fill}, {expr}}})"


def _remap_ctx(k: int, st: dict, dmax: int, iw: int, lanes: int) -> dict:
    """Template context of a data-movement unit (qmodel._remap_step): its counters' bounds, each
    source's address expression and widened read, the source select, and a/b as constants or tables.
    The expressions read a lane's counters ``r0`` .. and its element ``e`` (the template's per-lane
    block); ``chain`` adds a lane's offset to the counters, the last axis first, one carry each."""
    size = int(np.prod(st["dst"]["shape"]))
    wide = 2 * iw
    ax, ab = st["ax"], st["ab_axis"]
    key = "e" if ab == len(st["dims"]) else f"r{ab}"
    srcs = []
    for j, (m, strides) in enumerate(zip(st["srcs"], st["strides"])):
        terms = []
        for q, (dq, sq) in enumerate(zip(st["dims"], strides)):
            if dq == 1 or sq == 0:
                continue
            c = f"{{{iw}'d0, r{q}}}"
            if q == ax and st["offs"][j]:
                c = f"({c} - {wide}'d{st['offs'][j]})"
            terms.append(f"{c} * {wide}'d{sq}")
        if st.get("base", [0] * len(st["srcs"]))[j]:   # a slice's first element
            terms.append(f"{wide}'d{st['base'][j]}")
        ab_bits = _bits(int(np.prod(m["shape"])))
        srcs.append({"j": j, "name": m["name"], "addr": " + ".join(terms) or f"{wide}'d0",
                     "ext": _ext64(f"mem_{m['name']}[xad{j}[{ab_bits - 1}:0]]", m),
                     "a": [{"i": i, "v": _lit(v)} for i, v in enumerate(st["a"][j])],
                     "b": [{"i": i, "v": _lit(v)} for i, v in enumerate(st["b"][j])]})
    # the source whose range on the concat axis holds the counter: the last start at or below it
    sel = "".join(f"(r{ax} >= {iw}'d{st['offs'][j]}) ? {iw}'d{j} : " for j in reversed(range(1, len(srcs))))
    counters = [{"q": q, "last": dq - 1} for q, dq in enumerate(st["dims"]) if dq > 1]
    ln = min(lanes, size)
    chain, stride, cin = [], 1, None
    for n, c in enumerate(reversed(counters)):
        d = c["last"] + 1
        chain.append({"q": c["q"], "d": d, "stride": stride, "cin": cin, "wrap": n < len(counters) - 1})
        stride, cin = stride * d, c["q"]
    return {"k": k, "state": f"X{k}", "op": st["op"], "dst": st["dst"]["name"], "size": size,
            "bits": st["dst"]["bits"], "lo": -dmax if st["dst"]["signed"] else 0, "addr_bits": _bits(size),
            "srcs": srcs, "s": st["s"], "sel": sel + f"{iw}'d0", "table": ab != -1, "key": key,
            "counters": counters, "dims": st["dims"], "ln": ln, "last": _last(size, lanes), "chain": chain,
            "fixed": [q for q in range(REMAP_RANK) if q not in {c["q"] for c in counters}]}


def _recurrent_ctx(k: int, st: dict, rec: dict) -> dict:
    """Template context of a recurrent layer's cell unit (qmodel._recurrent_layer): its tables, the
    initial state and the fixed-point factors; the step counter ``pos`` walks the time steps."""
    from .qmodel import C_BITS, C_FRAC, CELL_SHIFT, LUT_BITS

    H, I, T = rec["hidden"], rec["inputs"], st["positions"]
    src = st["src"]
    gb = st["dst"]["bits"]     # the DACs read signed codes: the hidden state's width
    x = f"mem_{src['name']}[xaddr_{k}[{_bits(int(np.prod(src['shape']))) - 1}:0]]"
    fill = f"{x}[{src['bits'] - 1}]" if src["signed"] else "1'b0"
    xval = x if src["bits"] == gb else f"{{{{{gb - src['bits']}{{{fill}}}}}, {x}}}"
    return {"cell": rec["cell"], "H": H, "I": I, "T": T, "G": st["cols"] // H, "reverse": rec["reverse"],
            "fq": _lit(rec["fq"]), "iq": _lit(rec["iq"]), "cs": CELL_SHIFT, "chalf": _lit(1 << CELL_SHIFT >> 1),
            "lut_bits": LUT_BITS, "lut_half": 2 ** (LUT_BITS - 1), "c_bits": C_BITS, "c_top": 2 ** (C_BITS - 1) - 1,
            "c_lo_shift": C_FRAC - 6, "c_round": 1 << (C_FRAC - 7), "dmax": rec["dmax"], "xval": xval,
            "sig": [{"i": i, "v": _lit(int(v))} for i, v in enumerate(rec["sig"])],
            "tanh": [{"i": i, "v": _lit(int(v))} for i, v in enumerate(rec["tanh"])],
            "h0": [{"i": i, "v": _lit(int(v))} for i, v in enumerate(rec["h0"])],
            "c0": [{"i": i, "v": _lit(int(v))} for i, v in enumerate(rec["c0"])],
            "h_bits": _bits(H), "g_bits": _bits(st["cols"])}


def link_in_bits(prog: dict) -> int:
    """Width of the host link's in_data: the widest map the chip receives (a narrower one takes the low bits)."""
    return max(st["dst"]["bits"] for st in prog["steps"] if st["kind"] == "recv")


def _datapath_ctx(prog: dict, tiles: list[dict], lanes: int | list[int] = 1, latency: int | list[int] = 0,
                  cuts: list[tuple[int, int]] | None = None, banked: bool = True,
                  srams: dict | None = None) -> dict:
    """The chip top's template context. ``lanes``: elements a clock of the layers' gather and
    requantizer, the pooling, add, table, product and data-movement units (a recurrent layer's cell
    unit and the host link take one), every step's (:func:`step_lanes`) or one count for all;
    ``latency``: the macros' (macro_latency; every step's or one for all), which bounds the stores that may overlap a read
    (:func:`stores_overlap`); ``cuts``: the pipeline's stages
    (:func:`pipeline_stages`; one stage when None), each its own sequencer (:func:`_stage_ctx`);
    ``banked``: the tiles' word lines and pairs in banks of their layer's lanes (:func:`step_lanes`;
    False: ``--route-banks off``, one bank); ``srams``: the maps in SRAM macros (:func:`map_memories`),
    whose units' reads and writes are the macros' ports (:func:`_sram_sites`)."""
    bd, ba, ob = prog["dac_bits"], prog["adc_bits"], prog["out_bits"]
    per, lats = _per_step(prog, lanes), step_latency(prog, latency)
    iw = index_width(prog, max(per))
    dmax = 2 ** bd - 1
    tile_ix = {t["name"]: t for t in tiles}
    maps = {}
    ilv = {name: _ilv_ctx(name, x, prog) for name, x in map_interleave(prog, per).items()}
    for name, x in (srams or {}).items():
        ilv[name]["sram"] = x
    layers, pools, adds, muls, luts, remaps, recvs, sends, states = [], [], [], [], [], [], [], [], []
    regs = {r["layer"]: r for r in requant_regs(prog)}
    cal_regs = []     # the requantizer registers on the scan chain, after the tiles, in chain order
    for k, st in enumerate(prog["steps"]):
        if st["kind"] == "host":
            continue   # the host computes between the chip's send and recv streams
        lanes = per[k]
        if st["kind"] == "send":
            m = st["src"]
            size, b, ab = int(np.prod(m["shape"])), m["bits"], _bits(int(np.prod(m["shape"])))
            bm = ilv.get(m["name"])
            hi = None if bm is None else f"idx[{ab - 1}:{bm['lb']}]"    # the word of idx in its part
            # an interleaved map's word: its part's, by the part of idx (map_interleave)
            word = f"mem_{m['name']}[idx[{ab - 1}:0]]" if bm is None else f"osd_{k}"
            ext = word if b == ob else (f"{{{{{ob - b}{{{word}[{b - 1}]}}}}, {word}}}" if m["signed"]
                                        else f"{{{ob - b}'d0, {word}}}")
            sends.append({"k": k, "dir": "out", "state": f"O{k}", "tag": st["tag"], "src": m["name"], "size": size, "data": ext,
                          "ilv": bm, "addr_bits": ab, "word": None if bm is None else " : ".join(
                              [f"(ilv_{m['name']}(idx[{ab - 1}:0]) == {bm['lb']}'d{q}) ? {bm['refs'][q]}{hi}]"
                               for q in range(bm["B"] - 1)] + [f"{bm['refs'][-1]}{hi}]"])})
            states.append(f"O{k}")
            continue
        maps[st["dst"]["name"]] = st["dst"]
        if st["kind"] == "recv":
            m = st["dst"]
            size = int(np.prod(m["shape"]))
            recvs.append({"k": k, "dir": "in", "state": f"R{k}", "tag": st["tag"], "dst": m["name"], "size": size,
                          "bits": m["bits"], "addr_bits": _bits(size), "ilv": ilv.get(m["name"])})
            states.append(f"R{k}")
            continue
        if st["kind"] == "pool":
            c, h, w = st["src"]["shape"]
            _, ho, wo = st["dst"]["shape"]
            pools.append({"k": k, "state": f"P{k}", "src": st["src"]["name"], "dst": st["dst"]["name"],
                          "signed": st["src"]["signed"], "bits": st["src"]["bits"],
                          # padding: 0 for sums; the smallest code for a maximum, so it never wins
                          "pad": (f"-{st['src']['bits']}'sd{dmax}" if st["src"]["signed"] and st["pool"] == "max"
                                  else f"{st['src']['bits']}'d0"),
                          "H": h, "W": w, "C": c, "Ho": ho, "Wo": wo, "size": c * ho * wo, "avg": st["pool"] == "avg",
                          # the divisor depends on the output position only (rq repeats per channel):
                          # one table entry per position (ya, xa), not per element
                          "rq": [{"i": i, "v": int(v)} for i, v in enumerate(st.get("rq", [])[:ho * wo])],
                          "rq_uniform": int(st["rq"][0]) if "rq" in st and len(set(st["rq"].tolist())) == 1 else None,
                          "s": st.get("s", 0),
                          "kernel": st["kernel"], "stride": st["stride"], "pads": st["pads"],
                          "dilation": st["dilation"], "src_addr_bits": _bits(c * h * w),
                          "new": f"pnew_{k}", "wilv": ilv.get(st["dst"]["name"]),
                          # the interleaved map it reads its windows from (by coordinates: map_interleave)
                          "pilv": ilv.get(st["src"]["name"]),
                          "dst_addr_bits": _bits(c * ho * wo), "ln": min(lanes, c * ho * wo),
                          "last": _last(c * ho * wo, lanes)})
            states.append(f"P{k}")
            continue
        if st["kind"] == "remap":
            remaps.append({**_remap_ctx(k, st, dmax, iw, lanes), "new": f"xc_{k}", "wilv": ilv.get(st["dst"]["name"])})
            states.append(f"X{k}")
            continue
        if st["kind"] == "add":
            size = int(np.prod(st["dst"]["shape"]))
            ab = _bits(size)
            wa, wb = _ilv_word(ilv, st["src"], f"ea{k}_", ab), _ilv_word(ilv, st["src2"], f"eb{k}_", ab)
            adds.append({"k": k, "state": f"A{k}", "a": st["src"]["name"], "b": st["src2"]["name"],
                         "a_word": wa["word"], "b_word": wb["word"], "rilv": [x for x in (wa, wb) if x["bm"]],
                         "wilv": ilv.get(st["dst"]["name"]),
                         "what": "residual add", "new": f"anew_{k}", "last": _last(size, lanes), "ln": min(lanes, size),
                         "dst": st["dst"]["name"], "size": size, "addr_bits": ab, "aq": st["aq"],
                         "bq": st["bq"], "s": st["s"], "signed": st["dst"]["signed"], "bits": st["dst"]["bits"],
                         "signed_in": st["src"]["signed"] or st["src2"]["signed"],
                         "lo": -dmax if st["dst"]["signed"] else 0,
                         "a_ext": _ext64(wa["word"], st["src"]), "b_ext": _ext64(wb["word"], st["src2"])})
            states.append(f"A{k}")
            continue
        if st["kind"] == "lut":
            size = int(np.prod(st["dst"]["shape"]))
            sb, ob_ = st["src"]["bits"], st["dst"]["bits"]
            table = np.asarray(st["table"], np.int64)
            raw = (np.arange(len(table)) + st["lo"]) & ((1 << sb) - 1)   # the source code's bits
            wt = _ilv_word(ilv, st["src"], f"et{k}_", _bits(size))
            luts.append({"k": k, "state": f"T{k}", "act": st["act"], "src": st["src"]["name"], "dst": st["dst"]["name"],
                         "word": wt["word"], "rilv": [wt] if wt["bm"] else [], "wilv": ilv.get(st["dst"]["name"]),
                         "what": f"activation table ({st['act']})", "new": f"tnew_{k}", "last": _last(size, lanes),
                         "ln": min(lanes, size),
                         "size": size, "addr_bits": _bits(size), "src_bits": sb, "bits": ob_,
                         "rows": [{"i": int(i), "v": int(v) & ((1 << ob_) - 1)} for i, v in zip(raw, table)]})
            states.append(f"T{k}")
            continue
        if st["kind"] == "mul":
            size = int(np.prod(st["dst"]["shape"]))
            ab, gb = _bits(size), _bits(int(np.prod(st["src2"]["shape"])))
            wide = 2 * iw
            gaddr = f"{{{iw}'d0, e}}" + (f" / {wide}'d{st['div']}" if st["div"] > 1 else "")
            wm = _ilv_word(ilv, st["src"], f"em{k}_", ab)
            muls.append({"k": k, "state": f"M{k}", "dst": st["dst"]["name"], "size": size, "addr_bits": ab,
                         "rilv": [wm] if wm["bm"] else [], "wilv": ilv.get(st["dst"]["name"]),
                         "what": "gate product", "new": f"mnew_{k}", "last": _last(size, lanes), "ln": min(lanes, size),
                         "mq": st["mq"], "s": st["s"], "half": 1 << st["s"] >> 1, "bits": st["dst"]["bits"],
                         "lo": -dmax if st["dst"]["signed"] else 0, "div": st["div"], "mod": st["mod"],
                         "gaddr": f"({gaddr}) % {wide}'d{st['mod']}",
                         "x_ext": _ext64(wm["word"], st["src"]),
                         "g_ext": _ext64(f"mem_{st['src2']['name']}[mgad[{gb - 1}:0]]", st["src2"])})
            states.append(f"M{k}")
            continue
        K = st["rows"]
        tokens = bool(st.get("tokens"))
        conv = None
        if st["conv"]:
            c, h, w = st["src"]["shape"]
            conv = {**st["conv"], "H": h, "W": w, "Wo": (st.get("grid") or st["dst"]["shape"][1:])[1]}
        lt = []
        for t in st["tiles"]:
            ctx = tile_ix[t["name"]]
            # its DAC registers' banks: the layer's lanes (step_lanes), a recurrent layer's one
            bank = lanes if banked and not st.get("recur") else 1
            lt.append({**ctx, "row0": t["row0"], "ibits": _bits(ctx["rows"]), "bank": bank,
                       "row0_mod": t["row0"] % bank,
                       # its DAC codes latched for the whole read: a layer that gathers during its reads,
                       # on tiles whose outputs have no sample-and-hold to free the word lines (SETTLE)
                       "hold": overlaps(st) and ctx["share"] == 1})
        rec = st.get("recur")
        fields = requant_fields(st, regs[st["name"]])     # each column's MQ, BQ (and MQH, BQH)
        columns = []
        # a non-recurrent layer's stores add, for each lane's column, one code of each slot: tiles apart
        # in columns (a row band of the layer's tiles), so a lane's adders are one a slot, not a column's
        slots = [] if rec is not None else _column_slots(st["tiles"], st["cols"], ba)
        for j in range(st["cols"]):
            columns.append({"j": j})
            if rec is not None:    # its ADC codes of column j, sign-extended to 64 bits, by part (input, state)
                terms = [[], []]
                for t in st["tiles"]:
                    if t["col0"] <= j < t["col1"]:
                        hi = (j - t["col0"]) * ba + ba - 1
                        terms[int(t["row0"] >= rec["inputs"])].append(
                            "$signed({{" + str(64 - ba) + "{" + f"adc_{t['name']}[{hi}]" + "}}, " + _adc_code(t, j, ba) + "})")
                columns[-1].update(sum=" + ".join(terms[0]) or "64'sd0", sumh=" + ".join(terms[1]) or "64'sd0")
            # the constants from the layer's requantizer register (requant_regs)
            base = j * sum(b for _, _, b in fields)
            for name, _, b in fields:     # a recurrent layer's cell unit reads them through 64-bit functions
                columns[-1][name] = _field(f"cal_{k}", base, b, 64 if rec is not None else None)
                base += b
        names = [f"L{k}_G", f"L{k}_W", f"L{k}_S"] + ([f"L{k}_U"] if rec is not None else [])
        states += names
        n_cal = len(cal_regs)     # the layer's register of requant_regs, and its place on the chain
        cal = {**regs[st["name"]], "n": n_cal, "sin": f"scan_c{n_cal}", "sout": f"scan_c{n_cal + 1}",
               "wa": st["acc_bits"] + 1}     # the accumulator's value, signed (it sums signed ADC codes)
        cal_regs.append(cal)
        ln = 1 if rec is not None else lanes     # a unit has at most as many lanes as elements
        ls = store_lanes(st, ln)
        # the stores step ls columns a clock from column 0, so lane l only ever takes the columns
        # j = l (mod ls): with ls a power of two those low bits of j are the constant l, and its
        # selects of a column's codes and constants pick among cols/ls entries, not cols
        lane_lsb = ls.bit_length() - 1 if ls > 1 and ls & (ls - 1) == 0 else 0
        layers.append({"rec": None if rec is None else _recurrent_ctx(k, st, rec), "cal": cal,
                       # the interleaved maps it gathers from and stores to (map_interleave)
                       "gilv": _site_ilv(ilv, st["src"], _gathers_in_runs(st), _gathers_coords(st)),
                       "silv": _site_ilv(ilv, st["dst"], _stores_in_runs(st), _stores_coords(st) is not None),
                       "lg": min(ln, K), "ls": ls, "last_g": _last(K, ln), "last_s": _last(st["cols"], ls),
                       "group": st.get("group") or 0, "group_bits": _bits(st.get("group") or 1),
                       "ysigned": st["dst"]["signed"],
                       "su": names[-1],"k": k, "name": st["name"], "src": st["src"]["name"], "dst": st["dst"]["name"], "K": K,
                       "gbits": st["dst"]["bits"] if rec else st["src"]["bits"], "ybits": st["dst"]["bits"],
                       "M": st["cols"], "P": st["positions"], "base": st.get("base", 0), "conv": conv, "tokens": tokens, "tiles": lt,
                       "overlap": overlaps(st), "soverlap": stores_overlap(st, lanes, lats[k]),
                       "armed": armed_reads(st, lanes, lats[k]),
                       "settle": SETTLE if overlaps(st) else 0, "settle_bits": _bits(SETTLE + 1),
                       "done_concat": ", ".join(f"done_{t['name']}" for t in reversed(lt)),
                       "columns": columns, "slots": slots, "lane_lsb": lane_lsb, "ba": ba, "s": st["s"], "act": _act_ctx(st["act"]), "final": st["final"],
                       "sg": names[0], "sw": names[1], "ss": names[2],
                       "k_bits": _bits(K), "col_bits": _bits(st["cols"]),
                       "src_addr_bits": _bits(int(np.prod(st["src"]["shape"]))),
                       "dst_addr_bits": _bits(int(np.prod(st["dst"]["shape"])))})
    steps = sorted(layers + pools + adds + muls + luts + remaps + recvs + sends, key=lambda x: x["k"])
    sites = _sram_sites(steps, iw, link_in_bits(prog))
    if not recvs or not sends:
        raise ValueError("a chip program receives and sends at least one stream")
    mem = [{"name": m["name"], "size": int(np.prod(m["shape"])), "signed": m["signed"], "width": m["bits"], "banks": 0,
            "ilv": ilv.get(m["name"]), **sites.get(m["name"], {"reads": [], "writes": []})}
           for _, m in sorted(maps.items())]
    n_streams = len(recvs) + len(sends)
    cuts = cuts or [(0, len(prog["steps"]))]
    stage_ctx = _stage_ctx(prog, steps, cuts, mem)
    return {"maps": mem, "layers": layers, "pools": pools, "adds": adds, "muls": muls, "luts": luts,
            "remaps": remaps, "n_cal": len(cal_regs), "scan_tail": f"scan_c{len(cal_regs)}",
            "stages": stage_ctx, "pipelined": len(stage_ctx) > 1,
            # where the testbench finds a layer's requantizer register and a tile's wrapper: its stage's scope
            "unit_path": {L["k"]: S["path"] for S in stage_ctx for L in S["layers"]},
            "tile_path": {t["name"]: S["path"] for S in stage_ctx for L in S["layers"] for t in L["tiles"]},
            "recvs": recvs, "sends": sends, "streams": sorted(recvs + sends, key=lambda x: x["k"]),
            "tag_bits": _bits(n_streams),
            "in_total": sum(r["size"] for r in recvs),
            "out_total": sum(o["size"] for o in sends), "out_bits": ob,
            "in_bits": link_in_bits(prog),
            "remap_counters": [f"rc{q}" for q in range(REMAP_RANK)],
            "remap_reset": " ".join(f"rc{q} <= {iw}'d0;" for q in range(REMAP_RANK)),
            "dmax": dmax, "iw": iw}


def _ilv_word(ilv: dict, m: dict, p: str, ab: int) -> dict:
    """How an element-by-element unit's lane ``gl`` reads element ``e`` of map ``m``: the map's word,
    or, where it is interleaved, the lane's word of read port ``p`` (``ilv_read``)."""
    bm = ilv.get(m["name"])
    return {"p": p, "bm": bm, "word": f"mem_{m['name']}[e[{ab - 1}:0]]" if bm is None else f"{p}d[gl]"}


def _sram_sites(units: list[dict], iw: int, in_bits: int) -> dict[str, dict]:
    """The reads and writes of the maps in SRAM macros (``units``: the template's, in program order;
    each gets ``srams``, its sites): a site is a unit's port into every part of a map, named by its
    prefix ``p``, active while ``when`` holds (the unit's states; one unit of a stage is active at a
    time, and stages touch different banks), with each part's word ``addr`` and, for a write, its
    enable ``en`` and code ``data``. Returns ``{map: {"reads": [p...], "writes": [p...]}}``: the macro
    of each part and bank takes the address of its stage's active site (``top.v.j2``)."""
    out: dict[str, dict] = {}

    def add(u, bm, p, when, write, **kw):
        if not bm or not bm.get("sram"):
            return
        b = bm["B"]
        site = {"p": p, "bm": bm, "when": when, "write": write, "addr": [f"{p}w{q}" for q in range(b)]}
        if write:
            site.update(en=[f"{p}e{q}" for q in range(b)], data=[f"{p}x{q}" for q in range(b)])
        site.update(kw)
        u.setdefault("srams", []).append(site)
        out.setdefault(bm["name"], {"reads": [], "writes": []})["writes" if write else "reads"].append(p)

    for u in units:
        k = u["k"]
        if "sg" in u:       # a layer: its gather reads, its stores write
            add(u, u["gilv"], f"gr{k}_", f"(state == {u['sg']} || state == {u['sw']})", False)
            add(u, u["silv"], f"ws{k}_", f"(state == {u['ss']}" + (f" || (state == {u['sw']} && sprev))" if u["soverlap"]
                                                                  else ")"), True)
        elif u["state"].startswith("P"):
            add(u, u["pilv"], f"pr{k}_", f"(state == {u['state']})", False)
            kh, kw = u["kernel"]
            add(u, u["wilv"], f"wo{k}_", f"(state == {u['state']} && xb == {iw}'d{kw - 1} && yb == {iw}'d{kh - 1})", True)
        elif u["state"].startswith(("A", "T", "M", "X")):
            for r in u.get("rilv", []):
                add(u, r["bm"], r["p"], f"(state == {u['state']})", False)
            add(u, u["wilv"], f"wo{k}_", f"(state == {u['state']})", True)
        elif u["state"].startswith("R"):
            bm = u["ilv"]
            if bm and bm.get("sram"):
                lb, ib = bm["lb"], bm["ib"]
                data = "in_data" if u["bits"] == in_bits else f"in_data[{u['bits'] - 1}:0]"
                if bm["coord"]:
                    part, word = f"rpw_{k}[{lb - 1}:0]", f"rpw_{k}[{ib + lb - 1}:{lb}]"
                else:
                    part, word = f"ilv_{bm['name']}(idx[{u['addr_bits'] - 1}:0])", f"idx[{u['addr_bits'] - 1}:{lb}]"
                add(u, bm, f"rv{k}_", f"(state == {u['state']} && in_valid)", True,
                    en=[f"{part} == {lb}'d{q}" for q in range(bm["B"])], addr=[word] * bm["B"], data=[data] * bm["B"])
        elif u["state"].startswith("O"):
            bm = u["ilv"]
            if bm:
                add(u, bm, f"os{k}_", f"(state == {u['state']})", False,
                    addr=[f"idx[{u['addr_bits'] - 1}:{bm['lb']}]"] * bm["B"])
    return out


def _ilv_ctx(name: str, x: dict, prog: dict) -> dict:
    """Template context of a map interleaved over ``x["B"]`` parts (:func:`map_interleave`): its
    address and part-word widths, its parts' words, the part function's right-hand side and each
    part's reference (``mem_<map>_i<q>[``, renamed to its pipeline bank like the map's own)."""
    m = next(m for st in prog["steps"] for m in _step_maps(st) if m["name"] == name)
    size = int(np.prod(m["shape"]))
    b, ab = x["B"], _bits(size)
    lb = b.bit_length() - 1
    part = f"a[{lb - 1}:0]"
    if x["skew"] is not None:
        d = x["skew"]
        hi = min(ab - 1, d + lb - 1)
        high = f"a[{hi}:{d}]" if hi - d + 1 == lb else f"{{{lb - (hi - d + 1)}'d0, a[{hi}:{d}]}}"
        part += f" + {high}"
    ctx = {"name": name, "B": b, "lb": lb, "ab": ab, "ib": ab - lb, "words": part_words(x, size),
           "width": m["bits"], "signed": m["signed"], "skew": x["skew"], "part": part, "coord": None,
           "refs": [f"mem_{name}_i{q}[" for q in range(b)], "sram": None, "bk": "0", "nbanks": 1, "kb": 1}
    co = x.get("coord")
    if co:      # by coordinates (interleave_coord): the sites give each lane's part and word
        ctx.update(ib=_bits(ctx["words"]), part=None,
                   coord={**co, "ls": co["s"].bit_length() - 1})
    return ctx


def _site_ilv(ilv: dict, m: dict, runs: bool, coords: bool) -> dict | None:
    """The interleaved map ``m`` a layer's gather or stores address, if they do by the map's pattern:
    by address (``runs``, the first two) or by coordinates (``coords``) (map_interleave)."""
    bm = ilv.get(m["name"])
    return bm if bm is not None and (coords if bm["coord"] else runs) else None


def _reads(st: dict) -> list[str]:
    """The maps a program step reads."""
    ms = [st.get("src"), st.get("src2")] + list(st.get("srcs", []))
    if st.get("recur"):
        ms.append(st["dst"])     # the previous step's hidden state
    return [m["name"] for m in ms if m]


_MEM_REF = re.compile(r"mem_(\w+)\[")


def _in_stage(x, names: dict):
    """A unit's template context with its maps renamed (``names``: map -> what the stage addresses
    instead, its bank: ``mem_<map>[`` becomes ``mem_<map>[bk_<map>][``)."""
    if isinstance(x, str):
        return _MEM_REF.sub(lambda m: f"mem_{names.get(m.group(1), m.group(1))}[", x)
    if isinstance(x, list):
        return [_in_stage(v, names) for v in x]
    if isinstance(x, dict):
        return {k: (names.get(v, v) if k in ("src", "dst", "a", "b") and isinstance(v, str) else _in_stage(v, names))
                for k, v in x.items()}
    return x


def stage_banks(prog: dict, cuts) -> dict[str, tuple[int, int]]:
    """The maps a pipeline (``cuts``: each stage's steps ``[a, b)``) double-buffers: a map written in
    stage w and last read in stage r > w has K = r - w + 1 banks (``{map: (w, r)}``), so that stage w
    writes input n's into bank n mod K while the stages after it read the inputs before from theirs.
    Empty with one stage."""
    stage_of = {k: s for s, (a, b) in enumerate(cuts) for k in range(a, b)}
    writer, last_read = {}, {}
    for k, st in enumerate(prog["steps"]):
        if st["kind"] not in ("send", "host"):
            writer.setdefault(st["dst"]["name"], stage_of[k])
        for name in _reads(st):
            last_read[name] = max(last_read.get(name, 0), stage_of[k])
    return {m: (w, last_read[m]) for m, w in writer.items() if last_read.get(m, w) > w}


def _stage_ctx(prog: dict, units: list[dict], cuts: list[tuple[int, int]], maps: list[dict]) -> list[dict]:
    """Each pipeline stage's sequencer: its units (``units``, in program order, keyed by step ``k``),
    states and flags. With one stage, the states follow each other in program order and the last
    send leads back to the first receive. With several, stage s runs the steps of ``cuts[s]`` on
    one input while stage s + 1 runs the previous one: a stage ends in its finished state ``F<s>``
    and the next takes the input from its waiting state ``W<s+1>``. A map read in a later stage
    than its writer's has banks (:func:`stage_banks`; ``maps`` gets their count): every stage that
    touches it addresses ``mem_<map>[bk_<map>][...]``, its own bank counter stepping with its inputs."""
    n = len(cuts)
    banks = stage_banks(prog, cuts)
    for m in maps:
        if m["name"] in banks:
            w, r = banks[m["name"]]
            m["banks"] = r - w + 1
            if m["ilv"]:
                m["ilv"].update(nbanks=r - w + 1, kb=_bits(r - w + 1))
    out = []
    for s, (a, b) in enumerate(cuts):
        names = {m: f"{m}[bk_{m}]" for m, (w, r) in banks.items() if w <= s <= r}
        # an interleaved map's parts: each part's bank of the stage's input
        names.update({f"{m['name']}_i{q}": f"{m['name']}_i{q}[bk_{m['name']}]" for m in maps
                      if m["ilv"] and m["name"] in names for q in range(m["ilv"]["B"])})
        us = [_in_stage(u, names) if names else u for u in units if a <= u["k"] < b]
        here = {m for m, (w, r) in banks.items() if w <= s <= r}
        for u in us:
            _bank_of(u, here)
        firsts = [x["sg"] if "sg" in x else x["state"] for x in us]
        wait = f"W{s}" if s > 0 else None
        fin = f"F{s}" if s < n - 1 else None
        ends = [fin or wait or firsts[0]]
        for x, nxt in zip(us, firsts[1:] + ends):
            x["next"] = nxt
        states = [wait] if wait else []
        for x in us:
            states += [x["sg"], x["sw"], x["ss"]] + ([x["su"]] if x["rec"] else []) if "sg" in x else [x["state"]]
        states += [fin] if fin else []
        kind = lambda *ks: [x for x in us if any(x["state" if "state" in x else "sg"].startswith(k) for k in ks)]
        layers = [x for x in us if "sg" in x]
        pools, remaps = kind("P"), kind("X")
        adds, luts, muls = kind("A"), kind("T"), kind("M")
        lanes = max([1] + [x["lg"] for x in layers] + [x["ls"] for x in layers]
                    + [x["ln"] for x in pools + adds + luts + muls + remaps])
        out.append({"i": s, "scope": f"stage_{s}" if n > 1 else None, "path": f"stage_{s}." if n > 1 else "",
                    "units": [prog["steps"][x["k"]].get("name") or x["state"] for x in us],
                    "layers": layers, "pools": pools, "adds": adds, "luts": luts, "muls": muls, "remaps": remaps,
                    "elementwise": kind("A", "T", "M"), "recvs": kind("R"), "sends": kind("O"),
                    "states": states, "state_width": _bits(len(states)), "first_state": wait or firsts[0],
                    "start": firsts[0], "wait": wait, "fin": fin, "lanes": lanes,
                    # the bank counters of the maps this stage touches: its input's number mod K (the first
                    # stage's count from 0 and step when it hands an input over, the others' step when they
                    # take one, from K - 1)
                    "banks": [{"name": m, "K": r - w + 1, "bits": _bits(r - w + 1), "reset": 0 if s == 0 else r - w}
                              for m, (w, r) in sorted(banks.items()) if w <= s <= r],
                    "step_on": f"take_{max(0, s - 1)}",
                    "has_overlap": any(L["overlap"] for L in layers), "has_conv": any(x["conv"] for x in layers),
                    "has_pool": bool(pools),
                    # the SRAM macros' ports its units drive (_sram_sites)
                    "srams": [x for u in us for x in u.get("srams", [])]})
    return out


def _bank_of(x, banked: set[str]) -> None:
    """Give every interleaved map's context in a stage's unit ``x`` the bank its parts are read in
    (``bk``: the stage's counter of the map, ``banked`` the maps it has one of, or 0)."""
    if isinstance(x, dict):
        if "refs" in x and "sram" in x:
            x["bk"] = f"bk_{x['name']}" if x["name"] in banked else "0"
        for v in x.values():
            _bank_of(v, banked)
    elif isinstance(x, list):
        for v in x:
            _bank_of(v, banked)


def bipolar_tiles(prog: dict | None) -> frozenset:
    """The tiles whose layer reads signed codes: their word lines are driven to either sign."""
    return frozenset(t["name"] for st in (prog or {}).get("steps", []) if st["kind"] == "layer"
                     and (st["src"]["signed"] or st.get("recur")) for t in st["tiles"])


def sim_scan_bits(prog: dict) -> int:
    """Scan-chain bits of a program's tiles and requantizer registers (what the testbench shifts in)."""
    tiles = [t["name"] for st in prog["steps"] if st["kind"] == "layer" for t in st["tiles"]]
    return sum(bits for _, bits in scan_registers(prog, tiles))


def emit_verilog(ir: IR, pdk, env, source_sha: str, prog: dict | None, lanes: int | list[int] = 1,
                 cuts: list[tuple[int, int]] | None = None, banked: bool = True, srams: dict | None = None):
    """Yield ``(relative path, text)`` of every Verilog file (and the file lists). The simulation
    files come only while the scan chain is at most SIM_MAX_SCAN_BITS long; ``lanes``: the datapath's
    elements a clock, every step's or one count (_datapath_ctx); ``cuts``: the pipeline's stages,
    each its steps ``[a, b)`` (``rtl_cycles``' ``stages``; one stage when None); ``banked``: the
    tiles' word lines and pairs in banks (``--route-banks``, _datapath_ctx); ``srams``: the maps in SRAM
    macros (:func:`map_memories`), which add the macro's module and its simulation model."""
    prefix = sanitize(ir.name)
    level_bits = max(1, math.ceil(math.log2(pdk.levels)))
    tiles = _tile_ctx(ir, prefix, pdk, level_bits, bipolar_tiles(prog))
    ctx = {"version": __version__, "design": prefix, "prefix": prefix, "pdk": pdk, "tiles": tiles,
           "dac_bits": pdk.dac_bits, "adc_bits": pdk.adc_bits, "level_bits": level_bits, "source_sha": source_sha,
           "latency": macro_latency(pdk, ir.g.graph.get("adc_share", 1)), "share": ir.g.graph.get("adc_share", 1),
           # a read's clocks and each conversion's (macro_latency), for a tile's own share
           "read_clocks": MACRO_LATENCY, "conv_clocks": macro_latency(pdk, 1) - MACRO_LATENCY}
    # one parameterized tile wrapper and one macro for every tile (each instance gets its tile's
    # sizes and its place in the scan chain), not a module per tile
    names = []
    for rel, role in ((f"rtl/{prefix}_xbar.v", "verilog_macro"), (f"rtl/{prefix}_tile.v", "verilog_tile")):
        names.append(rel)
        yield rel, render(env, role, **ctx)
    if prog is not None:
        kq = {t["name"]: (st["kq"], st["sk"]) for st in prog["steps"] if st["kind"] == "layer" for t in st["tiles"]}
        lat = {t["name"]: t["latency"] for t in tiles}
        steps_lat = [lat[st["tiles"][0]["name"]] if st["kind"] == "layer" else ctx["latency"] for st in prog["steps"]]
        dp = _datapath_ctx(prog, tiles, lanes, steps_lat, cuts, banked, srams)
        names.append(f"rtl/{prefix}_top.v")
        yield names[-1], render(env, "verilog_top", **ctx, **dp)
        if srams:
            sctx = {**ctx, "sram": {k: (int(v) if float(v).is_integer() else v) for k, v in pdk.ppa["sram"].items()},
                    "clock_mhz": pdk.ppa["digital"]["clock_mhz"]}
            names.append(f"rtl/{prefix}_sram.v")
            yield names[-1], render(env, "sram_macro", **sctx)
            names.append(f"rtl/sim/{prefix}_sram_beh.v")
            yield names[-1], render(env, "sram_macro_sim", **sctx)
    if prog is not None and sim_scan_bits(prog) <= SIM_MAX_SCAN_BITS:
        names.append(f"rtl/sim/{prefix}_xbar_beh.v")
        yield names[-1], render(env, "verilog_macro_sim", **{**ctx, "tiles": [
            {**t, "kq": kq[t["name"]][0], "sk": kq[t["name"]][1]} for t in tiles]})
        names.append("rtl/sim/tb.v")
        yield names[-1], render(env, "verilog_tb", **ctx, **dp, scan_len=sim_scan_bits(prog))
        sim = sorted(p[len("rtl/"):] for p in names if p.startswith("rtl/sim/") or p == f"rtl/{prefix}_tile.v"
                     or p == f"rtl/{prefix}_top.v")
        yield "rtl/sim/files.f", "".join(f"{p}\n" for p in sim)
    synth = sorted(p[len("rtl/"):] for p in names if p.startswith("rtl/") and not p.startswith("rtl/sim/"))
    yield "rtl/files.f", "".join(f"{p}\n" for p in synth)
