"""Front ends: model file -> IR. ``load_model`` picks one by content and extension."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..ir import IR

#: Model files larger than this are refused before reading: protobuf cannot parse a larger message.
MAX_MODEL_BYTES = 2 ** 31 - 1


def read_model_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError(path, "no such file")
    if not path.is_file():
        raise InputError(path, "is not a regular file (expected an .onnx or .yaml model)")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise InputError(path, f"model file is {size} bytes; the limit is {MAX_MODEL_BYTES}")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror}") from None


def load_model(path: str | os.PathLike) -> tuple[IR, bytes]:
    """Read a model file; returns the IR and the file's bytes (for the manifest digest)."""
    path = Path(path)
    data = read_model_bytes(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        from .yaml import yaml_to_ir

        return yaml_to_ir(data, path), data
    from .onnx import onnx_to_ir

    return onnx_to_ir(data, path), data
