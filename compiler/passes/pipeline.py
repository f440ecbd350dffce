"""The single ordered list of passes, and the driver that runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import IRVerifyError
from ..ir import IR
from ..ir.verify import verify_ir
from .canonicalize import canonicalize
from .place import place
from .quantize import quantize
from .schedule import schedule
from .tile import tile


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable


PASSES: tuple[Pass, ...] = (
    Pass("canonicalize", canonicalize),
    Pass("quantize", quantize),
    Pass("tile", tile),
    # schedule before place: the placer orders tiles by their step
    Pass("schedule", schedule),
    Pass("place", place),
)

PASS_NAMES = tuple(p.name for p in PASSES)


def run_pipeline(ir: IR, options, pdk, dump: Callable[[str, IR], None] | None = None) -> IR:
    verify_ir(ir)
    for p in PASSES:
        ir = p.run(ir, options, pdk)
        if options.verify_each:
            try:
                verify_ir(ir)
            except IRVerifyError as e:
                raise IRVerifyError(e.where, f"after pass '{p.name}': {e.what}") from None
        if dump is not None and options.dump_ir_after == p.name:
            dump(p.name, ir)
    return ir
