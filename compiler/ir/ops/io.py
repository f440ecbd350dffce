"""Graph boundary and pass-through operators: input, output, identity."""

from __future__ import annotations

from . import register, same_shape


def _input_check(ir, n, d, ins) -> None:
    pass


def _through(d, xs, **_):
    return xs[0]


register("input", arity=0, attrs=("batch_axis",), check=_input_check, eval=None,
         doc="the model's input; attr batch_axis: where the source model has its batch axis (or None)")
register("output", arity=1, attrs=("batch_axis",), check=same_shape, eval=_through,
         doc="the model's output (its operand's value)")
register("identity", arity=1, check=same_shape, eval=_through, unit="view",
         doc="y = x (removed by the remove_identity pass)")
