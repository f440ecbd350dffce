import numpy as np
import pytest

from compiler.errors import InputError, UnsupportedOpError
from compiler.frontend import load_model
from compiler.ir.interp import run_ir
from conftest import MLP
from helpers import ir_run_onnx_layout, ort_run


def write(tmp_path, text, name="m.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_inline_weights_and_npy_file(tmp_path):
    np.save(tmp_path / "w2.npy", np.array([[1.0, -1.0, 0.5]]))
    p = write(tmp_path, """
amsc_graph: 1
name: tiny
inputs: [{name: x, shape: [2]}]
nodes:
  - {name: l1, op: dense, weight: [[1, 2], [3, 4], [-1, 0]], bias: [0.5, 0, 0], activation: relu}
  - {name: l2, op: dense, weight: {file: w2.npy}}
outputs: [l2]
""")
    ir, _ = load_model(p)
    (out,) = run_ir(ir, {"x": np.array([[1.0, 1.0], [2.0, -1.0]])}).values()
    h = np.maximum(np.array([[3.5, 7, -1], [0.5, 2, -2]]), 0)
    np.testing.assert_allclose(out, h @ np.array([[1.0], [-1.0], [0.5]]))


def test_yaml_mlp_equals_onnx_mlp():
    x = np.random.default_rng(1).uniform(0, 1, size=(7, 64))
    (want,) = ort_run(MLP / "model.onnx", {"input": x})
    ir, _ = load_model(MLP / "model.yaml")
    (got,) = ir_run_onnx_layout(ir, {"input": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("text,match", [
    ("- just\n- a list\n", "expected a YAML mapping"),
    ("amsc_graph: 1\ninputs: !!python/object/apply:os.system ['true']\nnodes: []\noutputs: []\n", "invalid YAML"),
    ("amsc_graph: 2\ninputs: []\nnodes: []\noutputs: []\n", "schema version"),
    ("amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\nnodes: [{name: a, op: dense, weight: [[1, 2, 3]]}]\n"
     "outputs: [a]\n", r"node 'a'.weight: shape \[1, 3\]"),
    ("amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\nnodes: [{name: a, op: dense, weight: [[1, .nan]]}]\n"
     "outputs: [a]\n", "NaN/Inf"),
    ("amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\nnodes: [{name: a, op: dense, weight: [[1, 2]], "
     "colour: red}]\noutputs: [a]\n", "unknown key"),
    ("amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\nnodes: [{name: a, op: dense, weight: {file: ../w.npy}}]\n"
     "outputs: [a]\n", "relative path inside"),
    ("amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\nnodes: [{name: a, op: relu, inputs: [zz]}]\n"
     "outputs: [a]\n", "'zz' is not defined"),
    ("amsc_graph: 1\ninputs: [{name: x, shape: [0]}]\nnodes: [{name: a, op: relu}]\noutputs: [a]\n",
     "positive integers"),
    ("amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\nnodes: [{name: a, op: relu}]\noutputs: [b]\n",
     "'b' is not a node"),
    ("amsc_graph: 1\ninputs: [{name: x, shape: [2]\n", "invalid YAML at line"),
])
def test_bad_yaml(tmp_path, text, match):
    p = write(tmp_path, text)
    with pytest.raises(InputError, match=match) as e:
        load_model(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_unknown_op(tmp_path):
    p = write(tmp_path, "amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\nnodes: [{name: a, op: softmax}]\n"
                        "outputs: [a]\n")
    with pytest.raises(UnsupportedOpError, match="softmax.*supported: dense"):
        load_model(p)


def test_npz_missing_key(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.ones((1, 2)))
    p = write(tmp_path, "amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\n"
                        "nodes: [{name: a, op: dense, weight: {file: w.npz, key: b}}]\noutputs: [a]\n")
    with pytest.raises(InputError, match=r"'b' not in w.npz; it has \['a'\]"):
        load_model(p)


@pytest.mark.parametrize("name, key", [("w.npy", ""), ("w.npz", ", key: a")])
def test_damaged_weight_file(tmp_path, name, key):
    # a zip archive's signature on a file that is not one (a damaged .npz, or one under a .npy name)
    (tmp_path / name).write_bytes(b"PK\x03\x04 not an archive")
    p = write(tmp_path, "amsc_graph: 1\ninputs: [{name: x, shape: [2]}]\n"
                        f"nodes: [{{name: a, op: dense, weight: {{file: {name}{key}}}}}]\noutputs: [a]\n")
    with pytest.raises(InputError, match=f"node 'a'.weight.file: cannot read '{name}'") as e:
        load_model(p)
    assert "\n" not in str(e.value)
