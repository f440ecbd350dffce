"""A reader for the SPICE subset amsc emits: R, V (DC), E (VCVS), H (CCVS) and X (subckt instances)
with ``.subckt``/``.ends``, ``.include``, ``+`` continuation lines and comments. It flattens the
hierarchy into a list of elements. Anything else is refused by name, so the MNA engine can never
silently solve a different circuit than ngspice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SimulationError

_SUFFIX = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}
_NUM = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(meg|[tgkmunpf])?[a-z]*$")
_IGNORED_DOTS = (".options", ".option", ".op", ".end", ".title", ".temp")


def spice_number(tok: str, where: str) -> float:
    m = _NUM.match(tok.lower())
    if not m:
        raise SimulationError(where, f"cannot read number '{tok}'")
    return float(m.group(1)) * _SUFFIX.get(m.group(2) or "", 1.0)


@dataclass(frozen=True)
class Element:
    kind: str            # "R", "V", "E", "H"
    name: str            # flattened, lower case (e.g. "vsp_0" or "xtile.vsp_0")
    nodes: tuple         # (n+, n-) or, for E, (n+, n-, nc+, nc-)
    value: float         # ohms, volts or gain
    ctrl: str = ""       # H: the controlling voltage source


def cards(text: str, title: bool = True) -> list[str]:
    """The cards of SPICE text: continuation lines joined, comments dropped (a comment between a
    card and its continuation does not end the card). A deck's first line is its title."""
    out: list[str] = []
    for k, raw in enumerate(text.splitlines()):
        line = raw.split(";", 1)[0].strip()
        if (k == 0 and title) or not line or line.startswith("*"):
            continue
        if line.startswith("+"):
            if not out:
                raise SimulationError("netlist", "continuation line before any card")
            out[-1] += " " + line[1:].strip()
        else:
            out.append(line)
    return out


def _include(text: str, base: Path | None, where: str, depth: int = 0) -> list[str]:
    """Cards of ``text``; a deck's first line is its title, an included file has none."""
    out: list[str] = []
    for card in cards(text, title=depth == 0):
        if card.lower().startswith(".include"):
            if depth > 8 or base is None:
                raise SimulationError(where, f"cannot resolve '{card}'")
            path = (base / card.split(None, 1)[1].strip().strip("'\"")).resolve()
            try:
                sub = path.read_text()
            except OSError as e:
                raise SimulationError(where, f"{card}: {e.strerror}") from None
            out += _include(sub, path.parent, where, depth + 1)
        else:
            out.append(card)
    return out


def read_deck(path: Path) -> str:
    """A deck file as self-contained text: every ``.include`` line replaced by the file it names
    (relative to the including file), so the deck can travel to a worker without the folder."""
    path = Path(path)
    out = []
    for line in path.read_text().splitlines(keepends=True):
        if line.lower().startswith(".include"):
            inc = path.parent / line.split(None, 1)[1].strip().strip("'\"")
            out.append(read_deck(inc))
        else:
            out.append(line)
    return "".join(out)


def parse(text: str, where: str, base: Path | None = None) -> list[Element]:
    """Flatten ``text`` (a whole deck) into elements."""
    subckts: dict[str, tuple[list[str], list[str]]] = {}
    top: list[str] = []
    cur = None
    for card in _include(text, base, where):
        low = card.lower()
        tok = low.split()
        if tok[0] == ".subckt":
            cur = (tok[1], tok[2:], [])
            continue
        if tok[0] == ".ends":
            if cur is None:
                raise SimulationError(where, ".ends without .subckt")
            subckts[cur[0]] = (cur[1], cur[2])
            cur = None
            continue
        (cur[2] if cur is not None else top).append(low)
    if cur is not None:
        raise SimulationError(where, f".subckt {cur[0]} has no .ends")
    elems: list[Element] = []
    _expand(top, {}, "", subckts, elems, where, 0)
    return elems


def _expand(cards, nodemap, prefix, subckts, elems, where, depth):
    def node(n):
        if n == "0" or n == "gnd":
            return "0"
        return nodemap.get(n, prefix + n)

    for card in cards:
        tok = card.split()
        head = tok[0]
        if head.startswith("."):
            if head in _IGNORED_DOTS or head.startswith(".options"):
                continue
            raise SimulationError(where, f"the MNA engine does not handle '{head}'")
        kind, name = head[0].upper(), prefix + head
        try:
            if kind == "R":
                elems.append(Element("R", name, (node(tok[1]), node(tok[2])), spice_number(tok[3], where)))
            elif kind == "V":
                rest = [t for t in tok[3:] if t != "dc"]
                elems.append(Element("V", name, (node(tok[1]), node(tok[2])),
                                     spice_number(rest[0], where) if rest else 0.0))
            elif kind == "E":
                elems.append(Element("E", name, tuple(node(t) for t in tok[1:5]), spice_number(tok[5], where)))
            elif kind == "H":
                elems.append(Element("H", name, (node(tok[1]), node(tok[2])), spice_number(tok[4], where),
                                     ctrl=prefix + tok[3]))
            elif kind == "X":
                sub = tok[-1]
                if sub not in subckts or depth > 16:
                    raise SimulationError(where, f"instance {head}: unknown subckt '{sub}'")
                ports, body = subckts[sub]
                conns = [node(t) for t in tok[1:-1]]
                if len(conns) != len(ports):
                    raise SimulationError(where, f"instance {head}: {len(conns)} nodes for {len(ports)} ports")
                _expand(body, dict(zip(ports, conns)), name + ".", subckts, elems, where, depth + 1)
            else:
                raise SimulationError(where, f"the MNA engine does not handle element '{head}'")
        except IndexError:
            raise SimulationError(where, f"incomplete card '{card}'") from None
