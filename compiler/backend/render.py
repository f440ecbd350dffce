"""The one Jinja2 environment. Templates hold loops, conditionals and substitutions only; numbers
are formatted and names built by the context builders in ``spice.py``/``verilog.py``."""

from __future__ import annotations

import jinja2


def environment(pdk) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in pdk.template_dirs]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(env: jinja2.Environment, role: str, **context) -> str:
    """Render the PDK's template for ``role``; ``context`` must hold the PDK as ``pdk``."""
    return env.get_template(context["pdk"].templates[role]).render(**context)


def spice_num(x: float) -> str:
    """A SPICE number with 10 significant digits (relative rounding below 5e-11)."""
    return f"{float(x):.10g}"


def chunks(items: list, n: int) -> list[list]:
    """Split a long list (e.g. a port list) into lines of ``n`` for continuation cards."""
    return [items[i:i + n] for i in range(0, len(items), n)] or [[]]
