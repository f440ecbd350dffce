"""amsc command line. Argument parsing only; errors become one line and an exit code:
0 ok, 1 verification failed, 2 bad input or usage."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path

from . import __version__
from .errors import AmscError, InputError
from .options import DEFAULT_LANES, DEFAULT_PIPELINE, MAX_LANES, MAX_STAGES

#: upper bounds of numeric options: beyond them a run is a typo, not a plan (and a timeout past
#: ~1e9 s overflows the OS's timers; a seed must fit the int64 that numpy and the reports keep)
SEED_MAX = 2 ** 63 - 1
JOBS_MAX = 1024
TIMEOUT_MAX = 1e6
MC_MAX = 100_000
_TILE = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*$")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + two lines by default)
        sys.stderr.write(f"error: {self.prog}: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


class _ListOps(argparse.Action):
    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        from .frontend.onnx import SUPPORTED_OPS
        from .frontend.yaml import YAML_OPS

        print("ONNX operators with a chip lowering (default domain):")
        for op in SUPPORTED_OPS:
            print(f"  {op}")
        print("Any other ONNX operator (or an unsupported form of one above) runs on the host, in onnxruntime,\n"
              "as part of a host segment (OUT/host/*.onnx); a model is refused only if nothing maps to a crossbar.")
        print("YAML graph ops (docs/yaml-graph.md):")
        for op in YAML_OPS:
            print(f"  {op}")
        parser.exit(0)


def _tile(text: str) -> tuple[int, int]:
    m = _TILE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not ROWSxCOLS (e.g. 64x64)")
    rows = int(m.group(1))
    cols = int(m.group(2) or m.group(1))
    if not (1 <= rows <= 4096 and 2 <= cols <= 4096 and cols % 2 == 0):
        raise argparse.ArgumentTypeError(
            f"'{text}': rows must be 1..4096 and cols an even number 2..4096 (two bit lines per signed output)")
    return rows, cols


def _lanes_text(rep: dict) -> str:
    """``--lanes`` as the chip has them: at most L a step, fewer where they would not pay."""
    per = [n for n in rep.get("step_lanes") or [rep["lanes"]] if n]   # 0: a step without lanes (the link)
    fewer = sum(n < rep["lanes"] for n in per)
    return f"{rep['lanes']} lane(s)" + (f", fewer in {fewer} of its {len(per)} units where more would not pay"
                                        if fewer else "")


def _number(kind=int, lo=None, hi=None, positive=False):
    """An argparse type: ``kind`` parsed from text, > 0 if ``positive``, else within [lo, hi]."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None
        if kind is float and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"'{text}' must be a finite number")
        if positive and not v > 0:
            raise argparse.ArgumentTypeError(f"'{text}' must be positive")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"'{text}' must be " + (f"in {lo}..{hi}" if lo is not None and hi is not None
                                                                     else f">= {lo}" if lo is not None else f"<= {hi:g}"))
        return v
    return parse


FINETUNE_HELP = ("with a chip state: fit the chip's final layer (its weights, within what each pair reaches around its "
                 "stuck cells) and its requantizer's per-column scale and bias to a few hundred labelled inputs "
                 "(integer labels), in numpy; the cost and the accuracy on X before and after go into the manifest's "
                 "chip.finetune (passes/finetune.py, docs/variability.md)")


class _GridError(Exception):
    """An argument error of a parser built for checking (``amsc explore``'s grid points)."""


class _CheckParser(_Parser):
    def error(self, message):
        raise _GridError(message)


def build_parser(parser_class=_Parser) -> argparse.ArgumentParser:
    from .passes.pipeline import PASS_NAMES

    p = parser_class(prog="amsc", description="Compile neural-network models onto analog resistive crossbars: "
                "SPICE netlists (ngspice), Verilog glue, and verification in ngspice against numpy.")
    p.add_argument("--version", action="version", version=f"amsc {__version__}")
    p.add_argument("--list-ops", action=_ListOps, help="print the supported ONNX and YAML operators and exit")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=parser_class, metavar="COMMAND")

    c = sub.add_parser("compile", help="compile an ONNX or YAML model into OUT/",
                       description="Compile MODEL (.onnx, or a .yaml graph, see docs/yaml-graph.md) into OUT: "
                       "spice/ (tile subckts, per-tile testbenches, chip.sp), rtl/ (Verilog), tiles/ "
                       "(quantized conductances as .npy), ir.json and manifest.json. OUT is written atomically "
                       "and replaced only if it holds an earlier amsc output.")
    c.add_argument("model", help="model file: .onnx, or .yaml/.yml graph")
    c.add_argument("-o", "--out", required=True, help="output folder")
    c.add_argument("--pdk", default="generic", help="PDK name under pdk_templates/ or a folder with pdk.yaml "
                   "(default: generic)")
    c.add_argument("--tile", type=_tile, metavar="ROWSxCOLS",
                   help="crossbar size: word lines x bit lines, two bit lines per signed output "
                   "(default: the PDK's)")
    c.add_argument("--parasitics", action="store_true",
                   help="model word-line and bit-line wire resistance as a distributed resistor mesh "
                   "(per-segment values from the PDK's wire section)")
    c.add_argument("--weight-scale", choices=("layer", "column"), default="layer",
                   help="map |w|max to the full conductance swing per layer (default) or per output column")
    c.add_argument("--weight-bits", type=_number(lo=1, hi=16), metavar="N",
                   help="conductance levels per device = 2**N (default: the PDK's levels)")
    c.add_argument("--adc-bits", type=_number(lo=1, hi=24), metavar="N", help="ADC resolution (default: the PDK's)")
    c.add_argument("--dac-bits", type=_number(lo=1, hi=24), metavar="N", help="DAC resolution (default: the PDK's)")
    c.add_argument("--compensate-ir", action="store_true",
                   help="with --parasitics (1R cells, ideal TIAs): pre-distort each tile's conductances on the level "
                   "grid and trim its word-line DAC and column TIA gains, fitted on the tile's own mesh model, so "
                   "that it computes its ideal-wire golden model (verify then holds it to 1 LSB)")
    c.add_argument("--wire-r", type=_number(float, positive=True, hi=1e9), metavar="OHMS",
                   help="with --parasitics: wire resistance per cell pitch of word and bit lines (default: the "
                   "PDK's wire.r_wl_segment and wire.r_bl_segment)")
    c.add_argument("--calibration", metavar="FILE.npy",
                   help="inputs [N, *input shape] that set the datapath's activation ranges (default: calib.npy "
                   "next to the model, else uniform samples of the input range: 64 for a small model, fewer for a "
                   "large one, 64 G multiply-accumulates in all and at least 8; evaluated 8 at a time)")
    c.add_argument("--input-range", type=_number(float, lo=-1e30, hi=1e30), nargs=2, metavar=("LO", "HI"), default=(0.0, 1.0),
                   help="range of the model's input values, mapped onto the first layer's DACs (default 0 1); a "
                   "negative LO (a normalized input) needs bipolar DACs, as the generic PDK has")
    c.add_argument("--corner", default="tt", metavar="CORNER",
                   help="process corner of a device-level PDK's models: tt (default), ss, ff, sf, fs")
    c.add_argument("--seed", type=_number(lo=0, hi=SEED_MAX), default=0,
                   help="seed for every random choice: placement, device programming error (default 0)")
    c.add_argument("--max-tiles", type=_number(positive=True), default=4096,
                   help="refuse designs needing more tiles than this (default 4096)")
    c.add_argument("--spare-rows", type=_number(lo=0, hi=4096), default=0, metavar="K",
                   help="word lines of every tile kept free for repair: a chip's fault-aware placement moves rows "
                   "off stuck cells onto them (default 0; their area is in 'amsc report')")
    c.add_argument("--spare-cols", type=_number(lo=0, hi=4096), default=0, metavar="K",
                   help="bit-line pairs (outputs) of every tile kept free for repair, as memory macros keep spare "
                   "columns (default 0)")
    c.add_argument("--adc-share", type=_number(positive=True, hi=4096), metavar="M",
                   help="outputs per ADC: M columns hold their TIA outputs on a sample-and-hold each and take turns "
                   "through an analog multiplexer into one ADC (M conversions per read); M must divide the tile's "
                   "outputs (default 8, or the largest divisor of the tile's outputs below 8; 1: an ADC per output, "
                   "no multiplexer). The default is the densest point of 'amsc explore' on cnn_digits whose digital "
                   "datapath takes at most 30 %% of the latency (README). Layers whose pipeline stage has slack take "
                   "more (--adc-balance)")
    c.add_argument("--adc-balance", choices=("off", "on"),
                   help="on: a layer whose pipeline stage has slack (it finishes an input before the slowest "
                   "stage) shares each ADC among more of its outputs, up to all of a tile's, or one ADC among "
                   "several of its tiles (up to 128 outputs, ISAAC's; not with --spare-cols), as far as the "
                   "pipeline still takes an input as often: fewer ADCs for the same throughput, a longer latency "
                   "(the manifest and the report list each layer's share). With one stage nothing has slack. "
                   "And the layers of one pipeline stage (the whole chip with --pipeline 1), which read one after "
                   "another, share one pool of ADCs: each ADC serves a group of outputs of each of several layers "
                   "(up to 128 channels), so the stage needs about its largest layer's ADCs, not the sum. "
                   "Default on (off on a PDK without a shared readout); off: every layer at --adc-share, each "
                   "tile with ADCs of its own")
    c.add_argument("--lanes", type=_number(positive=True, hi=MAX_LANES), metavar="L",
                   help="elements a clock of the digital datapath: the layers' gather (L DAC codes) and "
                   "requantizers (L outputs), the pooling, residual-add, table, product and data-movement units "
                   f"each handle L elements in one clock, from L read ports of their feature maps (default "
                   f"{DEFAULT_LANES}; 1 to 256; a recurrent layer's cell and the host link take one). L is the most "
                   "a unit gets: one whose clocks fewer lanes would lengthen by at most 1 %% (a convolution "
                   "whose gather and stores hide under its reads) gets the fewest such. "
                   "The RTL and the report follow it; the arithmetic does not change")
    c.add_argument("--route-banks", "--row-banks", dest="route_banks", choices=("lanes", "off"), default="lanes",
                   help="lanes (default): each tile's word lines and bit-line pairs are in as many banks as the "
                   "datapath has lanes; a row may only take a word line, and a column a pair, of its bank (mod L), "
                   "so each gather lane writes one bank's DAC registers and each column selects among its bank's "
                   "pairs (a 4-lane tile wrapper: 8.0 k gates, not 22.5 k); off: any row on any word line and any "
                   "column on any pair, the fault-aware placement's full freedom (for chips with many stuck cells); "
                   "--row-banks is its former name")
    c.add_argument("--map-memory", choices=("auto", "sram", "flops"), default="auto",
                   help="where the feature maps' interleaved parts are held: sram, each part in SRAM macros (the "
                   "PDK's ppa.sram and its sram_macro templates; one read and one write a clock, the macro "
                   "clocked at twice the chip's clock so a read needs no extra cycle); flops, in flip-flops; "
                   "auto (default), each part in whichever is smaller by the PDK's area figures (parts of a few "
                   "hundred bytes and more go into macros). Maps that are not interleaved stay flip-flops. The "
                   "RTL instantiates one macro module per part and bank (rtl/<design>_sram.v, a black box for "
                   "synthesis; rtl/sim/<design>_sram_beh.v simulates it) and the report counts their area, "
                   "access energy and leakage")
    c.add_argument("--pipeline", type=_number(positive=True, hi=MAX_STAGES), metavar="S",
                   help="run the chip's program as a pipeline of at most S stages over successive inputs: runs of "
                   "consecutive layers, split so that the slowest stage is the shortest, each with its own "
                   "sequencer, working on different inputs at once; a feature map read in a later stage than its "
                   "writer's is double-buffered (a bank per stage it spans, each stage addressing its own input's). "
                   "Throughput rises towards S times at the cost of those banks; latency and energy stay the same. Needs a chip of one segment (no host segments between "
                   f"its layers). Default {DEFAULT_PIPELINE} (the split takes the fewest stages that reach the "
                   "shortest period), or 1 on a chip with host segments between its segments; 1: one input at a time")
    c.add_argument("--conv-blocking", choices=("auto", "off"), default="auto",
                   help="auto (default): a convolution followed by a b x b pooling of stride b reads each pooling "
                   "window's b^2 positions in one crossbar read, as a convolution of stride b*s whose output "
                   "channels are the b^2 sub-positions (same weights, zeros elsewhere; the pooling then takes "
                   "the maximum or mean over them), where that keeps the layer's tile count: b^2 times fewer "
                   "reads for b^2 times the columns and ADCs; off: every layer as the model has it")
    c.add_argument("--chip-state", metavar="CHIP.npz",
                   help="compile for one chip: place every tile around the stuck cells its test found (a chip state "
                   "from 'amsc chip-state' or a tester, docs/variability.md) and give the netlists its conductances; "
                   "'amsc program' does this for an already compiled design")
    c.add_argument("--finetune-data", nargs=2, metavar=("X.npy", "Y.npy"), help=FINETUNE_HELP)
    c.add_argument("--dump-ir-after", choices=PASS_NAMES, metavar="PASS",
                   help=f"print the IR (canonical JSON) after PASS to stdout; one of: {', '.join(PASS_NAMES)}")

    v = sub.add_parser("verify", help="simulate every tile of OUT and compare it with the numpy golden model",
                       description="Simulate each tile testbench of a compiled OUT folder with seeded random DAC "
                       "input vectors (one DC sweep per tile, one vector per point), compare the TIA outputs with "
                       "the currents computed from the quantized conductances, and write OUT/verify.json and "
                       "OUT/verify.html. A design whose ADCs are shared also has each of its readout circuits "
                       "(sample-and-holds and multiplexer) run as an ngspice transient, side by side on the "
                       "workers. Results are cached in OUT/.verify-cache/, so an unchanged second run "
                       "simulates nothing (no tile, no readout). Exit 0 if every block "
                       "passes, 1 if any fails, 2 on bad input.")
    v.add_argument("out", help="output folder of 'amsc compile'")
    v.add_argument("--jobs", type=_number(positive=True, hi=JOBS_MAX), default=os.cpu_count() or 1,
                   help="worker processes, one ngspice each (default: CPU count)")
    v.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the blocks on this Dask distributed scheduler instead of local processes")
    v.add_argument("--engine", choices=("ngspice", "mna"), default="ngspice",
                   help="ngspice (sign-off, default) or mna: a scipy.sparse solve of the same netlist, for "
                   "linear resistive tiles")
    v.add_argument("--vectors", type=_number(positive=True), default=16, help="random input vectors per tile (default 16)")
    v.add_argument("--seed", type=_number(lo=0, hi=SEED_MAX), default=0, help="seed of the input vectors (default 0)")
    v.add_argument("--tolerance-lsb", type=_number(float, positive=True), default=1.0, metavar="N",
                   help="pass if every output is within N ADC LSBs of the ideal-wire golden model (default 1; "
                   "with --parasitics designs the IR drop counts as error, so choose N for your design)")
    v.add_argument("--timeout", type=_number(float, positive=True, hi=TIMEOUT_MAX), default=600.0,
                   help="seconds one simulation task (one tile, up to 256 vectors) may take before it is stopped "
                   "and its block reported as an error (default 600)")
    v.add_argument("--no-cache", action="store_true", help="ignore and do not write OUT/.verify-cache/")
    v.add_argument("--sample", type=_number(lo=1), metavar="K",
                   help="sign off a seeded random sample of K tiles (with --seed) instead of all: each layer's "
                   "largest tile is always in it; the report says it is a sample and names the tiles")
    s = sub.add_parser("rtl-sim", help="simulate the generated chip RTL (Icarus or Verilator), bit-exact against numpy",
                       description="Program the weights through the scan chain, stream every image of INPUTS through "
                       "OUT's chip RTL (with behavioural models of the analog macros) in Icarus Verilog or Verilator, "
                       "and compare every output bit-exactly with the numpy model of the quantized network. Writes "
                       "OUT/rtl_sim.json. Exit 0 if bit-exact, 1 if not, 2 on bad input.")
    s.add_argument("out", help="output folder of 'amsc compile'")
    s.add_argument("--inputs", required=True, metavar="X.npy",
                   help="images [N, *input shape] (or flattened [N, size]) as model inputs (floats)")
    s.add_argument("--labels", metavar="Y.npy", help="labels [N] to report accuracy")
    s.add_argument("--limit", type=_number(positive=True), help="use only the first N images")
    s.add_argument("--simulator", choices=("auto", "icarus", "verilator"), default="auto",
                   help="icarus (interpreted, no build), verilator (compiled to C++: a build of seconds to minutes, "
                   "then far faster per cycle), or auto (default): verilator, where it is installed, for runs that "
                   "would take Icarus longer than Verilator's build (estimated from the run's clocks: the scan "
                   "chain, then the images' cycles from the manifest, and the design's tiles)")
    s.add_argument("--scan", choices=("auto", "chain", "preload"), default="auto",
                   help="program the weights by shifting the scan chain bit by bit (chain), or load every register "
                   "with what that shifting leaves in it (preload; each shift is a clock of the whole design, so "
                   "an ImageNet-sized chain would take longer than its images), or auto (default): preload above "
                   "2^20 scan bits. The chain itself is checked on every smaller design")
    s.add_argument("--timeout", type=_number(float, positive=True, hi=1e6), default=1800.0, metavar="SECONDS",
                   help="limit of the simulator's build and of its run, each (default 1800)")
    r = sub.add_parser("run", help="run the compiled network on inputs: chip segments and host segments",
                       description="Run the whole compiled network of OUT on INPUTS: the chip segments as the "
                       "chosen engine computes their crossbar reads (with the integer datapath where one was "
                       "generated, bit-exact with the RTL), the host segments (OUT/host/*.onnx) in onnxruntime. "
                       "Reports top-1 agreement and output SNR against the float model in onnxruntime. "
                       "Exit 0 on success, 2 on bad input.")
    r.add_argument("out", help="output folder of 'amsc compile'")
    r.add_argument("--inputs", required=True, metavar="X.npy",
                   help="model inputs [N, *input shape] (or flattened [N, size]) as floats")
    r.add_argument("--engine", choices=("ideal", "mna", "ngspice"), default="ideal",
                   help="crossbar reads: ideal conductance arithmetic (default), mna (sparse solve of each "
                   "tile's netlist) or ngspice (the tile testbenches in ngspice)")
    r.add_argument("-o", "--output", metavar="Y.npy", help="write the outputs here (float32 .npy; .npz if the "
                   "model has several outputs)")
    r.add_argument("--limit", type=_number(positive=True), help="use only the first N inputs")
    e = sub.add_parser("evaluate", help="accuracy of the compiled network on the simulated chip, against float",
                       description="Run INPUTS through the float model (onnxruntime), the quantized chip with ideal "
                       "tiles, and, with --engine mna|ngspice, the chip with every crossbar read computed from the "
                       "emitted netlists. Reports accuracy (with --labels), top-1 agreement and output SNR against "
                       "float, and each layer's error against ideal tiles; --mc K adds K Monte-Carlo chips drawn from the PDK's "
                       "device model (programming error --sigma, stuck-at faults --stuck-rates, read noise, drift), "
                       "each tested and programmed as compiled, placed around its stuck cells, and calibrated per "
                       "column (docs/variability.md), with accuracy-against-sigma and against-fault-rate curves. Writes "
                       "OUT/eval.json, OUT/eval.html and plots in OUT/eval-report/. For a continuous-time design (amsc_dynamics), "
                       "each row of INPUTS is an initial state run through the ngspice transient against solve_ivp, "
                       "with settling time, supply energy and, with --labels (target states), retrieval accuracy "
                       "by the fraction of bits flipped (docs/dynamics.md). Exit 0, or 2 on bad input.")
    e.add_argument("out", help="output folder of 'amsc compile'")
    e.add_argument("--inputs", required=True, metavar="X.npy", help="model inputs [N, *input shape] as floats "
                   "(a continuous-time design: initial states [K, states])")
    e.add_argument("--labels", metavar="Y.npy", help="class labels [N], for accuracy (a continuous-time design: "
                   "target states [K, states], for retrieval)")
    e.add_argument("--engine", choices=("ideal", "mna", "ngspice"), default="ideal",
                   help="the circuit engine run besides float and ideal: mna (sparse solve of the netlists, linear "
                   "tiles) or ngspice (sign-off; nonlinear 1T1R tiles); ideal runs only float and ideal")
    e.add_argument("--samples", type=_number(positive=True), help="use only the first N inputs")
    e.add_argument("--mc", type=_number(positive=True, hi=MC_MAX), default=0, metavar="K",
                   help="Monte-Carlo chips (ideal tiles with drawn conductances), each without and with the "
                   "variability remedies")
    e.add_argument("--sigma", type=_number(float, lo=0.0, hi=10.0), help="relative one-shot programming sigma of each conductance "
                   "(>= 0; default: the PDK's variation.program_sigma)")
    wv = e.add_mutually_exclusive_group()
    wv.add_argument("--write-verify", dest="write_verify", action="store_true", default=None,
                    help="Monte Carlo of write-verified chips first (the default where the PDK models write-verify; "
                    "one-shot chips are reported next to them)")
    wv.add_argument("--no-write-verify", dest="write_verify", action="store_false",
                    help="Monte Carlo of one-shot programmed chips first")
    e.add_argument("--stuck-rates", type=_number(float, lo=0.0, hi=1.0), nargs=2, metavar=("HRS", "LRS"),
                   help="rates of cells stuck at HRS and at LRS in the Monte-Carlo chips, each in [0, 1), summing "
                   "to less than 1 (default: the PDK's variation.stuck_hrs_rate / stuck_lrs_rate)")
    e.add_argument("--read-time", type=_number(float, positive=True, hi=1e12), metavar="SECONDS",
                   help="time since programming at which the chip is read: conductances drift by (t/t0)^-nu "
                   "(the PDK's variation.drift_nu)")
    e.add_argument("--finetune-data", nargs=2, metavar=("X.npy", "Y.npy"),
                   help="labelled inputs [N, *input shape] and labels [N] (not the evaluation inputs): each "
                   "Monte-Carlo chip, placed and calibrated, also has its final layer and requantizer fitted to "
                   "them, as 'amsc program --finetune-data' does (the 'finetune' remedy)")
    e.add_argument("--seed", type=_number(lo=0, hi=SEED_MAX), default=0, help="seed of the Monte-Carlo draws")
    e.add_argument("--data", metavar="D.npy", help="a continuous-time generative model's data [M, N]: the energy "
                   "distance of the final states (the generated samples) to it, for ngspice, the quantized model and "
                   "the float model, next to the distance between two halves of the data")
    e.add_argument("--jobs", type=_number(positive=True, hi=JOBS_MAX), default=os.cpu_count() or 1,
                   help="parallel ngspice processes for a continuous-time design's runs (default: the CPU count)")
    e.add_argument("--sweep", action="store_true",
                   help="also recompile the design's source in a temporary folder with one option changed at a time "
                   "(ADC bits 4-10, weight bits 2-6, wire resistance 0.25-16 ohm with --parasitics through MNA, each "
                   "also with --compensate-ir) and report accuracy against each")
    k = sub.add_parser("chip-state", help="draw one chip's post-fabrication test (stuck cells) from the PDK's device "
                       "model", description="Write what a post-fabrication test of one chip of the design OUT measures: "
                       "per tile, every cell's read conductance and stuck-at map over the tile's physical array, in the "
                       "tile order of OUT/manifest.json (format: docs/variability.md). Drawn from the PDK's variation "
                       "model (the draw of one 'evaluate --mc' chip), so the flow runs without silicon; a tester's "
                       "measurements in the same layout are read the same way. The same OUT and --seed give the same "
                       "bytes. Exit 0, or 2 on bad input.")
    k.add_argument("out", help="output folder of 'amsc compile'")
    k.add_argument("-o", "--output", required=True, metavar="CHIP.npz", help="the chip-state file to write "
                   "(outside OUT: it describes a chip, not the design)")
    k.add_argument("--seed", type=_number(lo=0, hi=SEED_MAX), default=0, help="seed of the draw (one seed, one chip)")
    k.add_argument("--stuck-rates", type=_number(float, lo=0.0, hi=1.0), nargs=2, metavar=("HRS", "LRS"),
                   help="rates of cells stuck at HRS and at LRS, each in [0, 1), summing to less than 1 (default: the "
                   "PDK's variation.stuck_hrs_rate / stuck_lrs_rate)")
    k.add_argument("--sigma", type=_number(float, lo=0.0, hi=10.0), help="the chip's relative one-shot programming "
                   "sigma, recorded in the state (default: the PDK's variation.program_sigma)")
    g = sub.add_parser("program", help="compile OUT for one chip: its tiles placed around the chip's stuck cells",
                       description="Write OUT_CHIP, a complete compiled design for the one chip a chip state describes "
                       "(from 'amsc chip-state' or a tester): OUT's source recompiled with OUT's options, every tile "
                       "placed on that chip's word lines and bit-line pairs so that stuck cells land on zero or small "
                       "weights, stuck cells' partners programmed to keep their pairs' differences, the netlists' cells "
                       "at the chip's conductances (stuck cells included), the RTL's scan contents at the chip's "
                       "levels and its columns' calibrated requantizer constants (the RTL itself is the design's, "
                       "byte for byte), and a manifest that names the chip state. 'amsc verify' signs it off against its own "
                       "golden model; run, evaluate, report and rtl-sim work on it. Exit 0, or 2 on bad input.")
    g.add_argument("out", help="output folder of 'amsc compile' (with its ONNX source)")
    g.add_argument("--chip-state", required=True, metavar="CHIP.npz", help="the chip's test results")
    g.add_argument("-o", "--output", required=True, metavar="OUT_CHIP", help="output folder of the chip's design")
    g.add_argument("--finetune-data", nargs=2, metavar=("X.npy", "Y.npy"), help=FINETUNE_HELP)
    x = sub.add_parser("explore", help="compile MODEL at every point of a grid of options and measure each design",
                       description="Compile MODEL at every point of a grid of compile options (in parallel) and "
                       "measure each design as 'evaluate' and 'report' do: accuracy with ideal tiles (with --labels) "
                       "and SNR / top-1 agreement against the float model, energy per inference, area, latency, "
                       "throughput, TOPS/W and TOPS/mm^2. Writes DIR/explore.json (points, each with its options, "
                       "figures and a Pareto flag), DIR/explore.html with the Pareto fronts plotted, and "
                       "DIR/explore-report/. Exit 0, or 2 on bad input.")
    x.add_argument("model", help="model file (.onnx, or a .yaml graph)")
    x.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for explore.json and explore.html "
                   "(replaced only if it holds an earlier explore)")
    x.add_argument("--grid", nargs="+", metavar="KEY=V1,V2",
                   help="the values of each option: any 'amsc compile' option without its dashes (tile=64x64,128x128 "
                   "adc-bits=6,8 weight-bits=3,4 pdk=sky130_1t1r; a flag takes on/off; two-value options take LO:HI), "
                   "or adc-share=1,8,32. One value fixes an option. Default: "
                   "tile=64x64,128x128 adc-bits=6,8 adc-share=1,8,32")
    x.add_argument("--inputs", metavar="X.npy", help="inputs to score and to measure energy on (default: each "
                   "design's calibration samples)")
    x.add_argument("--labels", metavar="Y.npy", help="labels of --inputs: accuracy is the quality axis (else SNR)")
    x.add_argument("--samples", type=_number(positive=True), default=16, metavar="N",
                   help="inputs used per point (default 16)")
    x.add_argument("--jobs", type=_number(positive=True, hi=JOBS_MAX), default=os.cpu_count() or 1,
                   help="points compiled and measured at once on local processes (default: the number of CPUs)")
    x.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the points on this Dask distributed scheduler "
                   "(its workers share this file system: they read MODEL and the inputs and write the points by path)")
    x.add_argument("--timeout", type=_number(float, positive=True), default=3600.0, metavar="SECONDS",
                   help="limit of one point's compile and measurement (default 3600)")
    x.add_argument("--no-synth", action="store_true", help="skip yosys: the digital area is left out of every point")
    x.add_argument("--keep-designs", action="store_true", help="keep every point's compiled design in DIR/points/")
    q = sub.add_parser("report", help="area, energy per inference, latency, TOPS/W of the compiled chip, checked "
                       "against SPICE", description="Estimate the chip's area (crossbar cells, TIAs, ADCs, DACs, and "
                       "the digital datapath synthesized by yosys onto sky130 standard cells), its energy per inference "
                       "(crossbar read energy measured in SPICE for the actual activations of INPUTS, ADC/DAC/TIA "
                       "energy from the PDK's cited figures, digital operations) and latency (the RTL schedule, with "
                       "a read's settling time from an ngspice transient of the largest tile). Prints TOPS, TOPS/W, "
                       "TOPS/mm^2 next to published designs, and checks the analytic crossbar energy against SPICE. "
                       "Writes OUT/report.json, OUT/report.html and OUT/report/. Exit 0, or 2 on bad input.")
    q.add_argument("out", help="output folder of 'amsc compile'")
    q.add_argument("--inputs", metavar="X.npy", help="model inputs whose activations the energy is measured for "
                   "(default: the calibration samples the design holds, OUT/source/calib.npy)")
    q.add_argument("--samples", type=_number(positive=True),
                   help="use the first N inputs (default: 16, or all the inputs if they are fewer)")
    q.add_argument("--engine", choices=("ngspice", "mna"), default="ngspice",
                   help="circuit engine of the crossbar energy (default ngspice; mna for linear 1R tiles)")
    q.add_argument("--clock-mhz", type=_number(float, positive=True, hi=1e6), help="clock of the digital datapath (default: the PDK's)")
    q.add_argument("--seed", type=_number(lo=0, hi=SEED_MAX), default=0, help="seed of the reads sampled from nonlinear tiles")
    q.add_argument("--no-synth", action="store_true", help="skip yosys; the digital area is then left out")
    return p


def _phase_bar(command: str):
    """A transient progress bar on stderr (shown only on a terminal) for a command's long phases:
    ``(bar, progress)``, with ``progress(phase, done, total)`` as the library functions call it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(TextColumn(f"{command}: {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)
    task = bar.add_task("", total=1)

    def progress(phase: str, done: int, total: int) -> None:
        bar.update(task, description=phase, completed=done, total=total)

    return bar, progress


def _cmd_report(args) -> int:
    from .eval.ppa import report_design

    bar, progress = _phase_bar("report")
    with bar:
        rep = report_design(args.out, args.inputs, args.samples, args.engine, args.seed,
                            args.clock_mhz, not args.no_synth, progress)
    ec, dom = rep["energy_check"], rep["dominant"]
    print(f"amsc: report {args.out}: {rep['area_mm2']:.4g} mm^2, {rep['energy_per_inference_j'] * 1e9:.4g} nJ and "
          f"{rep['latency_s'] * 1e6:.4g} us per inference ({rep['throughput_per_s']:.4g} inferences/s); {rep['tops']:.3g} TOPS, {rep['tops_per_w']:.3g} TOPS/W, "
          f"{rep['tops_per_mm2']:.3g} TOPS/mm^2", file=sys.stderr)
    if rep["pipeline"]["stages"] > 1:
        print(f"  a {rep['pipeline']['stages']}-stage pipeline: an input every {rep['pipeline']['interval_s'] * 1e6:.4g} us "
              f"(stages {', '.join(f'{t * 1e6:.3g}' for t in rep['pipeline']['stage_periods_s'])} us)", file=sys.stderr)
    print(f"  energy is dominated by {dom['energy']} ({100 * dom['energy_share']:.0f} %), area by {dom['area']} "
          f"({100 * dom['area_share']:.0f} %)", file=sys.stderr)
    pe = rep["periphery"]
    each = f"{rep['adc_share']} output(s) each"
    if "adc_shares" in rep:    # --adc-balance on: the layers by their share (each one's in report.json)
        by = sorted(set(rep["adc_shares"].values()))
        layers = [[k for k, v in rep["adc_shares"].items() if v == m] for m in by]
        each = "outputs each " + ", ".join(f"{m} on {', '.join(ls) if len(ls) <= 2 else f'{len(ls)} layers'}"
                                           for m, ls in zip(by, layers))
    if pe.get("adcs_across_tiles"):
        each += f" ({pe['adcs_across_tiles']} ADC(s) serving several tiles of a layer)"
    if pe.get("adcs_in_pools"):
        each += (f"; {pe['adcs_in_pools']} shared by the layers of a pipeline stage (their own would be "
                 f"{pe['adcs_pooled_layers_own']})")
    print(f"  {pe['adcs']} ADCs, {each}, converting {100 * pe['adc_utilization']:.1f} % of the "
          f"inference time; {100 * rep['latency_breakdown_s']['digital_s'] / rep['latency_s']:.0f} % of the latency is "
          f"the digital datapath's ({_lanes_text(rep)}, {rep['digital']['ops']['cycles']} clocks an input)",
          file=sys.stderr)
    mem = rep["memory"]
    if mem["sram_macros"]:
        print(f"  {len(mem['sram_maps'])} feature map(s) in {mem['sram_macros']} SRAM macros "
              f"({rep['area_breakdown_mm2']['sram']:.4g} mm^2, {rep['energy_breakdown_j']['sram_leakage'] * 1e9:.3g} nJ "
              f"of leakage an input); the rest in flip-flops (--map-memory {mem['map_memory']})", file=sys.stderr)
    print(f"  a read settles in {rep['settling']['t_settle_s'] * 1e9:.3g} ns (ngspice transient of "
          f"{rep['settling']['tile']})", file=sys.stderr)
    print(f"  crossbar energy check: analytic {ec['crossbar_analytic_j']:.4g} J vs {rep['engine']} "
          f"{ec['crossbar_spice_j']:.4g} J, {100 * ec['rel_err']:.2f} % (largest tile {100 * ec['max_tile_rel_err']:.2f} %)",
          file=sys.stderr)
    sp = rep["spares"]
    if sp["cells"]:
        print(f"  spares: {sp['spare_rows']} word lines and {sp['spare_cols']} bit-line pairs over all tiles, "
              f"{sp['area_mm2']:.4g} mm^2 ({100 * sp['area_share']:.1f} % of the area) and {sp['energy_j'] * 1e9:.4g} "
              f"nJ per inference ({100 * sp['energy_share']:.2f} %)", file=sys.stderr)
    print(f"  -> {args.out}/report.json, {args.out}/report.html", file=sys.stderr)
    return 0


def _cmd_run(args) -> int:
    from .eval.run import run_design

    rep = run_design(args.out, args.inputs, args.engine, args.output, args.limit)
    print(f"amsc: run {args.out}: {rep['samples']} input(s), engine {rep['engine']}, chip model: "
          f"{rep['chip_model']}", file=sys.stderr)
    print(f"  segments: {' -> '.join(rep['segments'])}; float reference: {rep['float_reference']}", file=sys.stderr)
    for k, o in enumerate(rep["outputs"]):
        parts = [f"output {k} {o['shape']}"]
        if "snr_db" in o:
            parts.append(f"SNR {o['snr_db']:.1f} dB against float")
        if "top1_agreement" in o:
            parts.append(f"top-1 agreement {100 * o['top1_agreement']:.1f} %")
        print("  " + ", ".join(parts), file=sys.stderr)
    if "written" in rep:
        print(f"  outputs -> {rep['written']}", file=sys.stderr)
    return 0


def _evaluate_dynamics(args) -> int:
    from .eval.dynamics import evaluate_dynamics
    from .design import load_compiled

    man = load_compiled(args.out)
    for flag, on in (("--mc", args.mc), ("--sweep", args.sweep), ("--sigma", args.sigma is not None),
                     ("--read-time", args.read_time is not None), ("--engine", args.engine not in ("ideal", "ngspice")),
                     ("--finetune-data", args.finetune_data is not None), ("--stuck-rates", args.stuck_rates is not None)):
        if on:
            raise InputError(flag, f"{args.out} is a continuous-time design: evaluate runs its initial states in the "
                                   "ngspice transient; this option applies to networks")
    bar, progress = _phase_bar("evaluate")
    with bar:
        rep = evaluate_dynamics(Path(args.out), man, args.inputs, args.labels, args.samples, args.jobs, progress=progress,
                                data=args.data)
    print(f"amsc: evaluate {args.out}: {rep['runs']} run(s) in ngspice; final states agree in sign with solve_ivp in "
          f"{100 * rep['agreement']:.1f} %, largest trajectory error {rep['max_err_over_fs']:.2e} of full scale; energy "
          f"per run {rep['energy_per_run_j'] * 1e12:.4g} pJ ({rep['energy_to_settle_j'] * 1e12:.4g} pJ to settle)",
          file=sys.stderr)
    for g in rep.get("retrieval", {}).get("by_flipped_bits", []):
        print(f"  {g['flipped_bits']} bit(s) flipped ({g['flipped_percent']:.1f} %), {g['runs']} run(s): retrieval ngspice "
              f"{100 * g['accuracy_spice']:.1f} %, digital {100 * g['accuracy_digital']:.1f} %, float "
              f"{100 * g['accuracy_float']:.1f} %; settling {g['settle_spice_mean']:.3g} (digital "
              f"{g['settle_ref_mean']:.3g}) model time", file=sys.stderr)
    gen = rep.get("generation")
    if gen is not None:
        print(f"  generated samples against {gen['data_points']} data points (energy distance): ngspice "
              f"{gen['energy_distance_spice']:.4g}, quantized model {gen['energy_distance_digital']:.4g}, float model "
              f"{gen['energy_distance_float']:.4g} (ngspice / float {gen['spice_over_float']:.2f}); two halves of the data "
              f"{gen['energy_distance_data_halves']:.4g}; per sample, ngspice vs solve_ivp at most "
              f"{gen['max_sample_err']:.2e} (RMS {gen['rms_sample_err']:.2e})", file=sys.stderr)
    print(f"  -> {args.out}/eval.json, {args.out}/eval.html", file=sys.stderr)
    return 0


def _cmd_evaluate(args) -> int:
    from .eval.evaluate import evaluate_design

    from .design import peek_kind

    if peek_kind(args.out) == "dynamics":
        return _evaluate_dynamics(args)
    if args.data is not None:
        raise InputError("--data", f"{args.out} is a network; --data compares a continuous-time generative model's "
                                   "samples with its data (a network's quality is --labels)")
    bar, progress = _phase_bar("evaluate")
    with bar:
        rep = evaluate_design(args.out, args.inputs, args.labels, args.engine, args.samples, args.mc, args.sigma,
                              args.seed, progress,
                              sweep=args.sweep, write_verify=args.write_verify, read_time=args.read_time,
                              stuck_rates=tuple(args.stuck_rates) if args.stuck_rates else None,
                              finetune_data=args.finetune_data)
    print(f"amsc: evaluate {args.out}: {rep['samples']} input(s); chip model: {rep['chip_model']}", file=sys.stderr)
    for r in rep["runs"]:
        m = rep[r]
        parts = []
        if "accuracy" in m:
            parts.append(f"accuracy {100 * m['accuracy']:.2f} %")
        if m.get("top1_agreement") is not None:
            parts.append(f"top-1 agreement {100 * m['top1_agreement']:.1f} %")
        if m.get("snr_db") is not None:
            parts.append(f"SNR {m['snr_db']:.1f} dB")
        print(f"  {r + ':':9s}" + ", ".join(parts), file=sys.stderr)
    if "mc" in rep:
        mc = rep["mc"]
        for mode, v in mc["modes"].items():
            abl = mc["remedies"]["ablation"][mode]
            print(f"  monte carlo, {len(mc['samples'])} chips, {mode.replace('_', '-')}, sigma {v['sigma']:g}: "
                  f"{mc['metric'].replace('_', ' ')} " + ", ".join(
                      f"{r} {100 * a['mean']:.2f} % +- {100 * a['std']:.2f} %"
                      + (f" (SNR {a['snr_db']:.1f} dB)" if "snr_db" in a else "") for r, a in abl.items()),
                  file=sys.stderr)
        print("  each alone: " + ", ".join(f"{k.replace('_', ' ')} {100 * v['mean']:.2f} % +- {100 * v['std']:.2f} %"
                                        for k, v in mc["effects"].items()), file=sys.stderr)
        if "write_verify" in mc:
            w = mc["write_verify"]
            print(f"  write-verify: {w['iterations']} iterations, {w['pulses_per_weight']} pulses and "
                  f"{w['energy_per_weight_j'] * 1e12:.3g} pJ per weight", file=sys.stderr)
    for key, pts in rep.get("sweeps", {}).items():
        metric = next(k for k in ("accuracy", "top1_agreement") if k in pts[0])
        print(f"  sweep {key}: " + ", ".join(f"{p['value']:g}: {100 * p[metric]:.1f} %" for p in pts), file=sys.stderr)
        if pts and "compensated" in pts[0]:
            print(f"  sweep {key}, --compensate-ir: " + ", ".join(
                f"{p['value']:g}: {100 * p['compensated'][metric]:.1f} % (output error vs ideal wires "
                f"{100 * p['err_vs_ideal']:.2f} -> {100 * p['compensated']['err_vs_ideal']:.2f} %)" for p in pts),
                file=sys.stderr)
    print(f"  -> {args.out}/eval.json, {args.out}/eval.html", file=sys.stderr)
    return 0


def _cmd_chip_state(args) -> int:
    from .design import load_compiled, require_network
    from .design.chipstate import draw_for_design, write_state

    out, dest = Path(args.out), Path(args.output)
    man = load_compiled(out)
    require_network(out, man, "chip-state")
    if dest.is_dir():
        raise InputError(dest, "is a directory; expected the chip-state file to write (CHIP.npz)")
    if out.resolve() in dest.resolve().parents:
        raise InputError(dest, f"is inside the design's folder {out}; write the chip state elsewhere (it describes "
                               "one chip, not the design)")
    if not dest.parent.is_dir():
        raise InputError(dest, "its folder does not exist")
    state = draw_for_design(man, args.seed, tuple(args.stuck_rates) if args.stuck_rates else None, args.sigma)
    write_state(state, dest)
    c = state.fault_counts()
    d = state.header["origin"]["drawn"]
    print(f"amsc: chip-state {args.out}: {len(state.stuck)} tiles, {c['cells']} cells; {c['stuck_hrs']} stuck at HRS "
          f"({100 * c['stuck_hrs'] / c['cells']:.2f} %, rate {d['stuck_hrs_rate']:g}), {c['stuck_lrs']} stuck at LRS "
          f"({100 * c['stuck_lrs'] / c['cells']:.2f} %, rate {d['stuck_lrs_rate']:g}); seed {args.seed} -> {dest}",
          file=sys.stderr)
    return 0


def _cmd_program(args) -> int:
    from .design import load_compiled, require_network
    from .driver import program_design

    out, dest = Path(args.out), Path(args.output)
    man = load_compiled(out)
    require_network(out, man, "program")
    if dest.resolve() == out.resolve():
        raise InputError(dest, "is the design's own folder; write the chip's design to another folder")
    bar, progress = _phase_bar("program")
    with bar:
        t0 = time.perf_counter()
        m = program_design(out, man, args.chip_state, dest, progress=progress, finetune_data=args.finetune_data)
    print(f"amsc: program {args.out} for {args.chip_state} -> {dest}: {len(m['tiles'])} tile(s), {len(m['files'])} "
          f"files in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print_chip(m)
    return 0


def compile_options(args):
    """The CompileOptions of parsed ``amsc compile`` arguments, after the checks across options
    (one way for compile and for every point of ``amsc explore``)."""
    from .options import CompileOptions

    rows, cols = args.tile if args.tile else (None, None)
    if args.compensate_ir and not args.parasitics:
        raise InputError("--compensate-ir", "compensates the IR drop of the wire mesh, which only --parasitics emits")
    if args.wire_r is not None and not args.parasitics:
        raise InputError("--wire-r", "sets the resistance of the wire mesh, which only --parasitics emits")
    if args.finetune_data is not None and args.chip_state is None:
        raise InputError("--finetune-data", "fits one programmed chip; give its --chip-state (or use 'amsc program')")
    if not args.input_range[0] < args.input_range[1]:
        raise InputError("--input-range", f"LO {args.input_range[0]:g} must be below HI {args.input_range[1]:g}")
    return CompileOptions(pdk=args.pdk, tile_rows=rows, tile_cols=cols, seed=args.seed, parasitics=args.parasitics,
                          weight_scale=args.weight_scale, weight_bits=args.weight_bits, adc_bits=args.adc_bits,
                          dac_bits=args.dac_bits, wire_r=args.wire_r, compensate_ir=args.compensate_ir,
                          corner=args.corner, calibration=args.calibration,
                          max_tiles=args.max_tiles, dump_ir_after=args.dump_ir_after,
                          input_range=tuple(args.input_range), spare_rows=args.spare_rows,
                          spare_cols=args.spare_cols, chip_state=args.chip_state, adc_share=args.adc_share,
                          adc_balance=args.adc_balance,
                          lanes=args.lanes, pipeline=args.pipeline, conv_blocking=args.conv_blocking,
                          route_banks=args.route_banks, map_memory=args.map_memory,
                          finetune_data=None if args.finetune_data is None else tuple(args.finetune_data))


def _grid_parser():
    """A parser that raises instead of exiting, and the compile options a grid may vary (by name)."""
    from .eval.explore import FIXED

    parser = build_parser(_CheckParser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["compile"]
    return parser, {o[2:]: a for a in sub._actions for o in a.option_strings if o.startswith("--") and o[2:] not in FIXED}


def _grid_point_options(model: str, grid: list, point: dict, parser, flags: dict) -> dict:
    """A grid point's CompileOptions (as JSON), parsed and checked as 'amsc compile' would parse
    and check them (``parser``, ``flags``: :func:`_grid_parser`)."""
    argv = ["compile", model, "-o", "-"]
    for key, _ in grid:
        v = point[key]
        act = flags.get(key)
        if act is None:
            raise InputError("--grid", f"'{key}' is not a compile option; grid keys: "
                                       f"{', '.join(sorted(flags))}")
        if act.nargs == 0:
            if v.lower() not in ("on", "off", "true", "false", "yes", "no", "1", "0"):
                raise InputError("--grid", f"{key}={v}: a flag takes on or off")
            argv += [f"--{key}"] if v.lower() in ("on", "true", "yes", "1") else []
        elif isinstance(act.nargs, int) and act.nargs > 1:
            argv += [f"--{key}", *v.split(":")]
        else:
            argv += [f"--{key}", v]
    where = ", ".join(f"{k}={point[k]}" for k, _ in grid)
    try:
        ns = parser.parse_args(argv)
    except _GridError as e:
        raise InputError("--grid", f"{where}: {e}") from None
    opts = compile_options(ns)
    # what the tile pass would refuse on any model (an --adc-share its tile's outputs do not divide)
    from .driver import apply_overrides
    from .passes.tile import check_tile_options
    from .pdk import load_pdk
    try:
        check_tile_options(opts, apply_overrides(load_pdk(opts.pdk), opts))
    except InputError as e:
        raise InputError("--grid", f"{where}: {e}") from None
    return {"grid": dict(point), "compile": opts.to_json()}


def _cmd_explore(args) -> int:
    from .eval.explore import explore, parse_grid, points

    model = Path(args.model)
    if not model.is_file():
        raise InputError(model, "no such model file")
    grid = parse_grid(args.grid)
    parser, flags = _grid_parser()
    opts = [_grid_point_options(str(model), grid, p, parser, flags) for p in points(grid)]
    for f in (args.inputs, args.labels):
        if f is not None and not Path(f).is_file():
            raise InputError(f, "no such file")
    bar, progress = _phase_bar("explore")
    with bar:
        rep = explore(model, Path(args.output), opts, grid, args.inputs, args.labels, args.samples,
                      not args.no_synth, args.keep_designs, args.jobs, args.scheduler, args.timeout, progress)
    q = rep["quality"]
    best = [p for p in rep["points"] if p["pareto"]]
    print(f"amsc: explore {args.model} -> {args.output}: {len(rep['points'])} points ({rep['failed']} refused) in "
          f"{rep['seconds']:.0f} s; {len(best)} on the Pareto front of {q}, TOPS/W and TOPS/mm^2:", file=sys.stderr)
    for p in best:
        opt = " ".join(f"{k}={v}" for k, v in p["options"].items())
        qv = "-" if p.get(q) is None else (f"{100 * p[q]:.2f} %" if q == "accuracy" else f"{p[q]:.1f} dB")
        print(f"  #{p['index']} {opt}: {q} {qv}, {p['tops_per_w']:.3g} TOPS/W, {p['tops_per_mm2']:.3g} TOPS/mm^2, "
              f"{p['energy_per_inference_j'] * 1e9:.3g} nJ, {p['area_mm2']:.3g} mm^2", file=sys.stderr)
    print(f"  -> {args.output}/explore.json, {args.output}/explore.html", file=sys.stderr)
    return 0


def _cmd_compile(args) -> int:
    from .driver import compile_model
    from .ir.serialize import ir_to_json

    opts = compile_options(args)

    def dump(name, ir):
        sys.stdout.write(ir_to_json(ir))

    bar, progress = _phase_bar("compile")
    with bar:
        m = compile_model(args.model, args.out, opts, dump=dump, progress=progress)
    if m.get("kind") == "dynamics":
        d, sc = m["dynamics"], m["dynamics"]["scaling"]
        print(f"amsc: compiled {args.model} -> {args.out}: continuous-time model, {d['states']} state(s), "
              f"{d['activation']}, {'W1 and W2' if d['form'] == 'vector_field' else 'W'} on {len(m['tiles'])} tile(s); amplitude {sc['amplitude_v_per_unit']:.4g} V per "
              f"unit, time {sc['time_s_per_unit']:.4g} s per unit -> {d['deck']}", file=sys.stderr)
        return 0
    u = m["utilization"]
    print(f"amsc: compiled {args.model} -> {args.out}: {len(m['tiles'])} tile(s) in {len(m['layers'])} "
          f"layer(s), {len(m['files'])} files; cells used {u['used_cells']}/{u['available_cells']} "
          f"({100 * u['ratio']:.1f} %)", file=sys.stderr)
    for layer in m["layers"]:
        lu = layer["utilization"]
        print(f"  {layer['name']}: {len(layer['tiles'])} tile(s) ({layer['row_splits']} row x "
              f"{layer['col_splits']} column splits), utilization {100 * lu['ratio']:.1f} %, "
              f"accumulator {layer['acc_bits']} bits", file=sys.stderr)
    print(partition_table(m["partition"]), file=sys.stderr)
    comp = [t["compensation"] for t in m["tiles"] if "compensation" in t]
    if comp:
        worst = max(c["predicted_rms_lsb"] for c in comp)
        moved = (f"{100 * sum(c['levels_changed'] for c in comp) / len(comp):.1f} % of cells moved off their target "
                 "level" if all("levels_changed" in c for c in comp) else
                 f"cells re-programmed by at most {100 * max(c.get('moved_rel', 0.0) for c in comp):.1f} %")
        print(f"  IR-drop compensation: {len(comp)} tile(s), worst predicted RMS error {worst:.3f} LSB against the "
              f"ideal-wire golden model; {moved}", file=sys.stderr)
    print_chip(m)
    dp = m["rtl_datapath"]
    if not dp["generated"]:
        print(f"  chip RTL datapath not generated: {dp['reason']}", file=sys.stderr)
    else:
        print(f"  chip RTL: one top for every chip segment, {dp['streams']['in']} stream(s) in and "
              f"{dp['streams']['out']} out on its host link (rtl/program.json lists them)", file=sys.stderr)
    return 0


def print_chip(m: dict) -> None:
    """One line on a design compiled for one chip: its stuck cells and what the placement saved."""
    c = m.get("chip")
    if c is None:
        return
    before, after = c["weight_error_before"], c["weight_error"]
    saved = f"{100 * (1 - after / before):.1f} % less" if before > 0 else "none to remove"
    print(f"  chip {c['file']} (from {c['design']}): {c['stuck_cells_under_weights']} stuck cells under the weights "
          f"after placement; squared weight error of the stuck cells {saved} than where the compiler put the "
          f"weights (rows weighed by {c['placement_weights']})", file=sys.stderr)
    f = c.get("finetune")
    if f:
        print(f"  fine-tuned {f['layer']} on {f['samples']} labelled inputs: {f['parameters']} parameters, "
              f"{f['cells_rewritten']} cells rewritten; accuracy on them {100 * f['accuracy_before']:.1f} -> "
              f"{100 * f['accuracy_after']:.1f} %, loss {f['loss_before']:.3f} -> {f['loss_after']:.3f}", file=sys.stderr)


def partition_table(part: dict) -> str:
    """The segments of a compiled design as a text table: where each node went, and the MACs."""
    rows = [("segment", "kind", "nodes", "crossbar", "digital", "host", "MACs crossbar", "MACs host", "file")]
    for s in part["segments"]:
        h = s["homes"]
        rows.append((s["name"], s["kind"], str(s["nodes"]), str(h["crossbar"]), str(h["digital"]), str(h["host"]),
                     f"{s['macs_crossbar']:,}", f"{s['macs_host']:,}", s.get("file", "-")))
    tot = [sum(s[k] for s in part["segments"]) for k in ("macs_crossbar", "macs_host")]
    rows.append(("total", "", str(sum(s["nodes"] for s in part["segments"])), "", "", "", f"{tot[0]:,}",
                 f"{tot[1]:,}", ""))
    width = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  " + "  ".join(c.rjust(w) if 2 <= k <= 7 else c.ljust(w) for k, (c, w) in enumerate(zip(r, width)))
             for r in rows]
    share = 100.0 * tot[0] / (tot[0] + tot[1]) if tot[0] + tot[1] else 100.0
    out = ["  partition (segments in execution order):", *lines, f"  {share:.2f} % of the MACs run on crossbars"]
    order = {s["name"]: k for k, s in enumerate(part["segments"])}
    host = sorted((s for s in part["segments"] if s["kind"] == "host"), key=lambda s: (-s["macs_host"], order[s["name"]]))
    if host:
        why = {}
        for n in part["nodes"]:
            if n["home"] == "host" and "onnx_op" in n:
                why.setdefault(n["segment"], []).append(f"{n['onnx_op']} ({n['reason']})")
        out.append(f"  largest host segment(s) by MACs ({len(host)} in all; manifest.json names every host node's reason):")
        for s in host[:3]:
            first = why.get(s["name"], ["digital nodes between host nodes"])
            more = f" and {len(first) - 1} more" if len(first) > 1 else ""
            out.append(f"    {s['name']}: {s['macs_host']:,} MACs, {s['nodes']} node(s): {first[0]}{more}")
    return "\n".join(out)


def _cmd_verify(args) -> int:
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from .verify.report import summary_table
    from .verify.run import verify_dir

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 110)
    progress = Progress(TextColumn("verify"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=console,
                        transient=True)
    state = {}

    def start(total, cached):
        state["task"] = progress.add_task("verify", total=total, completed=cached, failed=0)
        progress.start()

    def block_done(block, k, n):
        if not block["passed"]:
            state["failed"] = state.get("failed", 0) + 1
            progress.console.print(f"[red]{block['name']}[/]: "
                                   + (f"ERROR {block['error']}" if block["error"] else
                                      f"FAIL max err {block['max_abs_err']:.3e} A > tol {block['tolerance']:.3e} A"))
        progress.update(state["task"], advance=1, failed=state.get("failed", 0))

    try:
        rep = verify_dir(args.out, jobs=args.jobs, vectors=args.vectors, seed=args.seed, timeout=args.timeout,
                         engine_name=args.engine, scheduler=args.scheduler, tolerance_lsb=args.tolerance_lsb,
                         use_cache=not args.no_cache, on_block=block_done, on_start=start, sample=args.sample)
    finally:
        progress.stop()
    console.print(summary_table(rep))
    if "distribution" in rep:
        from .verify.dynamics import distribution_line

        console.print(distribution_line(rep["distribution"]), highlight=False, soft_wrap=True)
    n_ok = sum(b["passed"] for b in rep["blocks"])
    n = len(rep["blocks"])
    ro = rep.get("readout")
    ros = [ro, *ro.get("others", [])] if ro is not None else []
    ro_sim = sum(not r.get("cached") for r in ros)
    how = (f"{rep['simulated']} tile(s) simulated, {n - rep['simulated']} from the cache"
           + (f"; {ro_sim} of {len(ros)} readout(s) simulated" if ros else "")
           if rep["simulated"] + ro_sim else "no simulation: every block came from the cache")
    for r in ros:
        n_ok, n = n_ok + r["passed"], n + 1
        console.print(f"readout ({r['share']} outputs per ADC, ngspice transient"
                      f"{', from the cache' if r.get('cached') else ''}): "
                      f"{'[green]pass[/]' if r['passed'] else '[red]FAIL[/]'}, max error {r['max_err_lsb']:.4f} LSB "
                      f"of {r['conversions']} conversions (tolerance {r['tolerance_lsb']:g})", soft_wrap=True)
    if "sample" in rep:
        smp = rep["sample"]
        console.print(smp.get("note") or f"a sample: {smp['verified']} of {smp['tiles']} tiles (seed {smp['seed']}; "
                      f"{smp['rule']})", highlight=False, soft_wrap=True)
    console.print(f"amsc: verify {args.out}: {n_ok}/{n} blocks passed ({how}) in {rep['seconds']:.1f} s "
                  f"-> {args.out}/verify.json, {args.out}/verify.html", highlight=False, soft_wrap=True)
    return 0 if rep["passed"] else 1


def _cmd_rtl_sim(args) -> int:
    from .verify.rtlsim import rtl_sim

    bar, progress = _phase_bar("rtl-sim")
    with bar:
        rep = rtl_sim(args.out, args.inputs, args.labels, args.limit, timeout=args.timeout,
                      simulator=args.simulator, scan=args.scan, progress=progress)
    acc = (f", accuracy {100 * rep['accuracy_rtl']:.1f} % (numpy model {100 * rep['accuracy_model']:.1f} %)"
           if "accuracy_rtl" in rep else "")
    verdict = "bit-exact" if rep["bit_exact"] else f"{rep['mismatches']} MISMATCHES, first {rep['first_mismatch']}"
    print(f"amsc: rtl-sim {args.out}: {rep['images']} images x {rep['outputs_per_image']} outputs {verdict}{acc} "
          f"in {rep['seconds']:.1f} s ({rep['simulator']}: build {rep['build_seconds']:.1f} s"
          f"{' (' + rep['build'] + ')' if 'build' in rep else ''}, run "
          f"{rep['run_seconds']:.1f} s; {rep['scan_bits']} scan bits "
          f"{'preloaded' if rep['scan'] == 'preload' else 'shifted in'}) -> {args.out}/rtl_sim.json", file=sys.stderr)
    if rep.get("cycles_per_input_predicted"):
        stages = rep.get("pipeline_stages", 1)
        through = (f"; {rep['latency_cycles']:.0f} through the {stages}-stage pipeline (counted "
                   f"{rep['latency_cycles_predicted']})" if stages > 1 else "")
        print(f"  {rep['cycles_per_input']:.0f} clocks an input at {_lanes_text(rep)}, the compiler counted "
              f"{rep['cycles_per_input_predicted']}{through} ({100 * rep['cycles_rel_err']:.2f} % apart)",
              file=sys.stderr)
    return 0 if rep["bit_exact"] else 1


def _terminate(signum, frame):
    raise KeyboardInterrupt   # the same clean-up as Ctrl-C: nothing half-written is left behind


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    command = {"compile": _cmd_compile, "verify": _cmd_verify, "rtl-sim": _cmd_rtl_sim, "run": _cmd_run,
               "evaluate": _cmd_evaluate, "report": _cmd_report, "chip-state": _cmd_chip_state,
               "program": _cmd_program, "explore": _cmd_explore}[args.cmd]
    try:
        if args.cmd in ("compile", "explore"):
            return command(args)
        from .design import using

        with using(args.out, args.cmd):   # compile cannot replace the folder under it; stale results removed
            return command(args)
    except AmscError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        done = "; nothing was written" if args.cmd in ("compile", "explore") else ""
        print(f"error: {args.cmd}: interrupted{done}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
