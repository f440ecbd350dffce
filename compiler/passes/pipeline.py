"""The single ordered list of passes, and the driver that runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import IRVerifyError
from ..ir import IR
from ..ir.verify import verify_ir
from .block_conv import block_conv
from .fold_batchnorm import fold_batchnorm
from .fold_scale import fold_scale
from .fuse_activation import fuse_activation
from .fuse_bias import fuse_bias
from .calibrate import calibrate
from .fault_map import fault_map
from .finetune import finetune
from .fuse_gelu import fuse_gelu
from .merge_pad import merge_pad
from .partition import partition
from .place import place
from .program import program
from .quantize import quantize
from .remove_identity import remove_identity
from .schedule import schedule
from .tile import tile


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable


PASSES: tuple[Pass, ...] = (
    Pass("remove_identity", remove_identity),
    Pass("merge_pad", merge_pad),
    # before fold_scale: its 1/sqrt(2) and 0.5 are part of the GELU, not scales to fold
    Pass("fuse_gelu", fuse_gelu),
    # before fuse_bias and fold_batchnorm: a scale between a layer (or BN) and its bias add goes first
    Pass("fold_scale", fold_scale),
    Pass("fuse_bias", fuse_bias),
    Pass("fold_batchnorm", fold_batchnorm),
    # again: folding a BatchNormalization can expose a constant add that now follows the layer
    Pass("fuse_bias_after_bn", fuse_bias),
    Pass("fuse_activation", fuse_activation),
    # after the activation is fused: a convolution and the b x b pooling after it read a window a read
    Pass("block_conv", block_conv),
    Pass("quantize", quantize),
    Pass("tile", tile),
    # with --chip-state: every tile placed around that chip's stuck cells, before it is programmed
    Pass("fault_map", fault_map),
    Pass("program", program),
    # with --chip-state: each column's gain and offset on the programmed chip, into its requantizer
    Pass("calibrate", calibrate),
    # with --finetune-data: the chip's final layer and requantizer fitted to labelled inputs
    Pass("finetune", finetune),
    # schedule before place: the placer orders tiles by their step
    Pass("schedule", schedule),
    Pass("place", place),
    Pass("partition", partition),
)

PASS_NAMES = tuple(p.name for p in PASSES)


def run_pipeline(ir: IR, options, pdk, dump: Callable[[str, IR], None] | None = None,
                 upto: str | None = None, progress: Callable[[str, int, int], None] | None = None) -> IR:
    """Run the passes in order (through ``upto``, if given), verifying the IR after each.
    ``progress(phase, done, total)`` hears of every finished pass."""
    if upto is not None and upto not in PASS_NAMES:
        raise ValueError(f"no pass named {upto!r}")
    verify_ir(ir)
    for k, p in enumerate(PASSES):
        if progress is not None:
            progress(f"pass {p.name}", k, len(PASSES))
        ir = p.run(ir, options, pdk)
        if options.verify_each:
            try:
                verify_ir(ir)
            except IRVerifyError as e:
                raise IRVerifyError(e.where, f"after pass '{p.name}': {e.what}") from None
        if dump is not None and options.dump_ir_after == p.name:
            dump(p.name, ir)
        if p.name == upto:
            break
    return ir
