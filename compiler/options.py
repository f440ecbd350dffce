"""Compile options: one frozen dataclass passed explicitly through the pipeline (no globals)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


#: Lanes of the digital datapath unless ``--lanes`` says otherwise (backend/verilog.py; README, "Lanes")
DEFAULT_LANES = 4
#: ``--lanes`` at most: each lane is a copy of a unit's arithmetic and a read port of its feature maps
MAX_LANES = 256
#: ``--pipeline`` at most
MAX_STAGES = 64
#: Pipeline stages at most unless ``--pipeline`` says otherwise (backend/verilog.pipeline_stages takes
#: the fewest that reach the shortest period: 5 on cnn_digits, 9 on SqueezeNet 1.1; README, "Pipeline")
DEFAULT_PIPELINE = 8


def lanes_of(options) -> int:
    """The datapath's lanes: ``--lanes``, or DEFAULT_LANES (``options``: CompileOptions, or a
    manifest's ``options``)."""
    lanes = options.get("lanes") if isinstance(options, dict) else options.lanes
    return DEFAULT_LANES if lanes is None else lanes


def route_banks_of(options) -> int:
    """The banks a placement keeps each tile's rows and columns in: the lanes (:func:`lanes_of`), or 1
    with ``route_banks`` "off" (``options``: CompileOptions, or a manifest's ``options``)."""
    if isinstance(options, dict):     # a manifest's options (before column banks: "row_banks")
        banks = options.get("route_banks", options.get("row_banks", "lanes"))
    else:
        banks = options.route_banks
    return 1 if banks == "off" else lanes_of(options)


@dataclass(frozen=True)
class CompileOptions:
    pdk: str = "generic"
    #: Physical tile size (word lines x bit lines). ``None`` takes the PDK's default.
    tile_rows: int | None = None
    tile_cols: int | None = None
    #: Range of the model input values that the first layer's DACs map onto [0, Vread].
    input_range: tuple[float, float] = (0.0, 1.0)
    #: Emit word-line and bit-line wire resistance as a distributed resistor mesh.
    parasitics: bool = False
    #: "layer": one weight scale per layer; "column": one per output column (finer levels for small columns).
    weight_scale: str = "layer"
    #: Overrides of the PDK's resolution (None keeps the PDK's): conductance levels = 2**weight_bits.
    weight_bits: int | None = None
    adc_bits: int | None = None
    dac_bits: int | None = None
    #: With ``parasitics``: ohms of wire per cell pitch on word and bit lines (None keeps the PDK's).
    wire_r: float | None = None
    #: With ``parasitics``: pre-distort every tile's conductances and trim its DAC and TIA gains so that
    #: it computes its ideal-wire golden model (passes/compensate_ir.py).
    compensate_ir: bool = False
    #: Process corner of the PDK's device models (tt, ss, ff, sf, fs).
    corner: str = "tt"
    #: .npy of calibration inputs [N, *input shape] for the datapath's activation ranges (None: see driver).
    calibration: str | None = None
    seed: int = 0
    #: Word lines and bit-line pairs of every tile kept free for repair (passes/tile.py, fault_map.py).
    spare_rows: int = 0
    spare_cols: int = 0
    #: Outputs per ADC: that many columns share one ADC through a sample-and-hold per column and an
    #: analog multiplexer (backend/readout.py). ``None``: DEFAULT_ADC_SHARE, or the largest divisor
    #: of the tile's outputs below it (passes/tile.py).
    adc_share: int | None = None
    #: "on": a layer whose pipeline stage has slack shares its ADCs among more of its outputs, as
    #: many as keep the pipeline's interval (backend/verilog.adc_balance); "off": every layer at
    #: ``adc_share``. ``None``: on where the PDK describes a shared readout (passes/tile.py).
    adc_balance: str | None = None
    #: Elements a clock of the digital datapath's units (backend/verilog.py): the layers' gather and
    #: requantizers, pooling, adds, tables, products and data movement. ``None``: DEFAULT_LANES.
    lanes: int | None = None
    #: Stages of the chip's pipeline over successive inputs at most (backend/verilog.pipeline_stages):
    #: consecutive layers in different stages work on different inputs at once; 1 runs one input at a
    #: time. ``None``: DEFAULT_PIPELINE, or one stage for a chip with host segments between its segments.
    pipeline: int | None = None
    #: "auto": a convolution followed by a b x b pooling of stride b reads each pooling window's b^2
    #: positions in one read where that keeps its tile count (passes/block_conv.py); "off": never.
    conv_blocking: str = "auto"
    #: "lanes": a tile's word lines and bit-line pairs are in as many banks as the datapath has lanes,
    #: every row and column placed on a word line and pair of its bank (passes/fault_map.py), every
    #: gather lane writing one bank's DAC registers and every column selecting among its bank's pairs
    #: (tile_wrapper.v.j2); "off": one bank, any row on any word line and any column on any pair.
    route_banks: str = "lanes"
    #: Where the interleaved feature maps' parts are held (backend/verilog.map_memories): "sram" in
    #: SRAM macros (the PDK's ``ppa.sram``), "flops" in flip-flops, "auto" each part in whichever is
    #: smaller by the PDK's figures.
    map_memory: str = "auto"
    #: A chip state (.npz, design/chipstate.py): place every tile around that chip's stuck cells and
    #: program its conductances (passes/fault_map.py); None compiles for no chip in particular.
    chip_state: str | None = None
    #: With ``chip_state``: (inputs .npy, labels .npy) to fit the chip's final layer and its
    #: requantizer to (passes/finetune.py); None leaves them as compiled.
    finetune_data: tuple[str, str] | None = None
    #: Refuse designs needing more tiles than this, before anything is written.
    max_tiles: int = 4096
    #: Run the IR verifier after every pass (always on in tests).
    verify_each: bool = True
    #: Pass name after which the IR is printed (``--dump-ir-after``), or ``None``.
    dump_ir_after: str | None = None

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["input_range"] = list(self.input_range)
        if self.finetune_data is not None:
            d["finetune_data"] = list(self.finetune_data)
        return d

    @classmethod
    def from_json(cls, d: dict, **changes) -> "CompileOptions":
        """The options :meth:`to_json` wrote (a manifest's ``options``), with ``changes`` to fields
        (what ``amsc program`` and ``amsc evaluate --sweep`` recompile with)."""
        d = {**d, **changes}
        d["input_range"] = tuple(d["input_range"])
        if d.get("finetune_data") is not None:
            d["finetune_data"] = tuple(d["finetune_data"])
        return cls(**d)
