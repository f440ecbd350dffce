"""The one exception hierarchy of amsc.

The library raises these; only ``compiler.cli`` turns them into a one-line message and an exit code.
Every message names the file (and, where there is one, the node or field) it is about.
"""

from __future__ import annotations


class AmscError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 2

    def __init__(self, where: str | object, what: str):
        self.where = str(where)
        self.what = " ".join(str(what).split())  # one line, always
        super().__init__(f"{self.where}: {self.what}")


class InputError(AmscError):
    """The user's input (model file, option, output path, compiled directory) is wrong."""


class UnsupportedOpError(InputError):
    """The model uses an operator, or an operator variant, that amsc cannot lower."""


class IRVerifyError(AmscError):
    """The IR is inconsistent. After a pass this is a compiler bug; after a front end, bad input."""


class PdkError(InputError):
    """A PDK is missing, or its pdk.yaml is invalid."""


class ToolError(AmscError):
    """A required external tool (ngspice shared library, Verilog tools) is missing."""


class SimulationError(AmscError):
    """A simulator failed on a block (did not parse, did not converge, crashed, timed out)."""

    exit_code = 1
