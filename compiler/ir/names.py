"""The one sanitizer for every name that reaches SPICE or Verilog.

Names map to ``[A-Za-z_][A-Za-z0-9_]*``, are unique within a :class:`Namer`, avoid the keywords of
SPICE and Verilog, and are stable: the same sequence of requests gives the same names.
"""

from __future__ import annotations

import re

_BAD = re.compile(r"[^A-Za-z0-9_]+")

# Reserved words of Verilog-2005/SystemVerilog that are plausible layer names, plus SPICE words that
# would be read as something other than a name. Compared case-insensitively, since SPICE folds case.
_RESERVED = frozenset(
    """always and assign automatic begin buf case casex casez cell config deassign default defparam
    design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
    endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1
    if ifnone initial inout input instance integer join large liblist library localparam macromodule
    medium module nand negedge nmos nor not or output parameter pmos posedge primitive pull0 pull1
    pulldown pullup rcmos real realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1
    scalared signed small specify specparam strong0 strong1 supply0 supply1 table task time tran
    tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned use uwire vectored wait wand weak0
    weak1 while wire wor xnor xor logic bit byte int shortint longint
    gnd vdd end ends subckt include lib param model option options op tran ac dc control endc""".split()
)

MAX_LEN = 48


def sanitize(raw: str) -> str:
    """Map any string to a legal identifier (not yet unique)."""
    s = _BAD.sub("_", str(raw)).strip("_")
    s = re.sub(r"_+", "_", s)[:MAX_LEN].rstrip("_")
    if not s:
        s = "n"
    if s[0].isdigit():
        s = "n_" + s
    if s.lower() in _RESERVED:
        s = s + "_"
    return s


class Namer:
    """Hands out unique sanitized names; comparisons are case-insensitive (SPICE folds case)."""

    def __init__(self, taken: tuple[str, ...] | list[str] = ()):
        self._taken: set[str] = {t.lower() for t in taken}

    def fresh(self, raw: str) -> str:
        base = sanitize(raw)
        name, k = base, 1
        while name.lower() in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name.lower())
        return name
