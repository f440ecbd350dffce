"""amsc: a compiler from neural-network models to analog in-memory-computing crossbars."""

__version__ = "0.1.0"
