"""ONNX front end: ``reader`` loads a model and walks its graph; each operator is lowered by the
function the registry (``registry.py``) holds for its op type and opset, one module per family."""

from . import activation, conv, dense, elementwise, norm, recurrent, resample, shape  # noqa: F401  (they register the lowerings)
from .reader import Val, check_external_data, load_external_data, onnx_to_ir  # noqa: F401
from .registry import supported

#: ONNX operators with a crossbar or digital lowering (the others run on the host)
SUPPORTED_OPS = supported()
