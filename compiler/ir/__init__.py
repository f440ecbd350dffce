"""The amsc IR: a networkx DiGraph with typed node attributes."""

from .graph import IR, OPS  # noqa: F401
