"""Models as exporters write them (issue 18, 'loading as exporters write'): weights in external data
files (torch.onnx.export with external_data, the dynamo exporter), in a subfolder too; modules as
local functions (the dynamo exporter); batch dimensions fixed at 1. And the bad input around them:
a missing, truncated or escaping external data file is one line and exit 2."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import amsc
from helpers import assert_clean_error

RNG = np.random.default_rng(7)
W1 = RNG.normal(size=(32, 48)).astype(np.float32)
W2 = RNG.normal(size=(10, 32)).astype(np.float32)


def _mlp(batch=1) -> onnx.ModelProto:
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W1"], ["h"], transB=1, name="fc1"),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("Gemm", ["r", "W2"], ["y"], transB=1, name="fc2")], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 48])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])],
        initializer=[numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(W2, "W2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _save_external(folder, location: str):
    os.makedirs(folder / os.path.dirname(location) if os.path.dirname(location) else folder, exist_ok=True)
    onnx.save_model(_mlp(), folder / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return folder / "m.onnx"


def _inputs(tmp_path, rows=8):
    p = tmp_path / "x.npy"
    np.save(p, RNG.uniform(0, 1, (rows, 48)).astype(np.float32))
    return p


def _snr(stderr: str) -> float:
    return float(stderr.split("SNR ")[1].split(" dB")[0])


@pytest.mark.parametrize("location", ["m.onnx.data", "weights/m.data"])
def test_external_data_compiles_and_runs_against_onnxruntime(tmp_path, location):
    model = _save_external(tmp_path / "model", location)
    out = tmp_path / "o"
    r = amsc("compile", model, "-o", out)
    assert r.returncode == 0, r.stderr
    assert (out / "source" / location).read_bytes() == (tmp_path / "model" / location).read_bytes()
    r = amsc("run", out, "--inputs", _inputs(tmp_path))      # batch fixed at 1, eight rows
    assert r.returncode == 0, r.stderr
    assert _snr(r.stderr) > 12 and "top-1 agreement" in r.stderr
    # the same numbers as the model with its weights inside
    onnx.save(_mlp(), tmp_path / "inline.onnx")
    assert amsc("compile", tmp_path / "inline.onnx", "-o", tmp_path / "o2").returncode == 0
    for t in sorted((out / "tiles").glob("*.npy")):
        np.testing.assert_array_equal(np.load(t), np.load(tmp_path / "o2" / "tiles" / t.name))


def test_missing_external_data(tmp_path):
    model = _save_external(tmp_path / "model", "m.onnx.data")
    (tmp_path / "model" / "m.onnx.data").unlink()
    r = amsc("compile", model, "-o", tmp_path / "o")
    assert_clean_error(r, "m.onnx", "external data file 'm.onnx.data' is missing", out=tmp_path / "o")


def test_truncated_external_data(tmp_path):
    model = _save_external(tmp_path / "model", "m.onnx.data")
    data = tmp_path / "model" / "m.onnx.data"
    data.write_bytes(data.read_bytes()[:1000])
    r = amsc("compile", model, "-o", tmp_path / "o")
    assert_clean_error(r, "m.onnx", "is truncated", out=tmp_path / "o")


@pytest.mark.parametrize("location", ["../secret.data", "/etc/passwd"])
def test_external_data_outside_the_models_folder(tmp_path, location):
    model = _save_external(tmp_path / "model", "m.onnx.data")
    m = onnx.load(model, load_external_data=False)
    (tmp_path / "secret.data").write_bytes((tmp_path / "model" / "m.onnx.data").read_bytes())
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save(m, model)
    r = amsc("compile", model, "-o", tmp_path / "o")
    assert_clean_error(r, "m.onnx", "is not a file inside the model's folder", out=tmp_path / "o")


def test_a_tampered_source_cannot_read_outside_the_design(tmp_path):
    """The design's copy of the source names its external data; run confines it to source/."""
    import hashlib
    import json

    model = _save_external(tmp_path / "model", "m.onnx.data")
    out = tmp_path / "o"
    assert amsc("compile", model, "-o", out).returncode == 0
    src = out / "source" / "m.onnx"
    m = onnx.load(src, load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../../model/m.onnx.data"
    onnx.save(m, src)
    man = json.loads((out / "manifest.json").read_text())
    for f in man["files"]:
        if f["path"] == "source/m.onnx":
            f["sha256"] = hashlib.sha256(src.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(man))
    r = amsc("run", out, "--inputs", _inputs(tmp_path))
    assert_clean_error(r, "m.onnx", "is not a file inside the model's folder")


def test_local_functions_are_inlined(tmp_path):
    """The dynamo exporter writes each module as a local function; onnx's inliner expands them."""
    fn = helper.make_function("pkg.torch", "Block", ["a", "w"], ["b"],
                              [helper.make_node("MatMul", ["a", "w"], ["m"]), helper.make_node("Relu", ["m"], ["b"])],
                              [helper.make_opsetid("", 17)])
    g = helper.make_graph(
        [helper.make_node("Block", ["x", "Wt"], ["h"], domain="pkg.torch", name="block"),
         helper.make_node("Gemm", ["h", "W2"], ["y"], transB=1, name="fc2")], "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 48])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(W1.T.copy(), "Wt"), numpy_helper.from_array(W2, "W2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("pkg.torch", 1)],
                          functions=[fn])
    m.ir_version = 8
    onnx.save(m, tmp_path / "f.onnx")
    r = amsc("compile", tmp_path / "f.onnx", "-o", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "100.00 % of the MACs run on crossbars" in r.stderr
    r = amsc("run", tmp_path / "o", "--inputs", _inputs(tmp_path))
    assert r.returncode == 0 and _snr(r.stderr) > 12, r.stderr


@pytest.mark.parametrize("shape, needle", [((8, 47), "expected [N, 48]"), ((8, 1, 48), "expected [N, 48]")])
def test_batch_fixed_model_given_the_wrong_feature_shape(tmp_path, shape, needle):
    onnx.save(_mlp(), tmp_path / "m.onnx")
    assert amsc("compile", tmp_path / "m.onnx", "-o", tmp_path / "o").returncode == 0
    p = tmp_path / "bad.npy"
    np.save(p, np.zeros(shape, np.float32))
    for cmd in ("run", "evaluate"):
        assert_clean_error(amsc(cmd, tmp_path / "o", "--inputs", p), "bad.npy", needle)


def test_recurrent_node_with_a_dynamic_sequence_length_is_refused(tmp_path):
    """An LSTM exported with its sequence axis dynamic ([T, N, I], both symbolic): the chip's time
    steps must be known at compile time; one line, exit 2, nothing written."""
    rng = np.random.default_rng(3)
    h, i = 4, 3
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["x", "W", "R"], ["", "y_h"], hidden_size=h)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "N", i])],
        [helper.make_tensor_value_info("y_h", TensorProto.FLOAT, [1, "N", h])],
        initializer=[numpy_helper.from_array(rng.normal(size=(1, 4 * h, i)).astype(np.float32), "W"),
                     numpy_helper.from_array(rng.normal(size=(1, 4 * h, h)).astype(np.float32), "R")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "lstm.onnx"
    onnx.save(model, path)
    out = tmp_path / "out"
    assert_clean_error(amsc("compile", path, "-o", out), "lstm.onnx", "input 'x'", "several unknown dimensions",
                       out=out)
