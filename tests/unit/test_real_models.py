"""The ImageNet architectures shipped in the onnx wheel (onnx/backend/test/data/light: AlexNet,
DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512), opset 9,
every weight a ConstantOfShape. Each must lower as shipped. With seeded random weights in place of
the constant ones (a constant weight makes every channel alike and hides layout bugs), the IR from
the front end and after every canonicalize pass must compute what onnxruntime computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from compiler.frontend import load_model
from compiler.frontend.fold import fold_constants
from compiler.options import CompileOptions
from compiler.passes.pipeline import run_pipeline
from compiler.pdk import load_pdk
from helpers import ir_run_onnx_layout

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = sorted(LIGHT.glob("light_*.onnx"))
#: the two largest (VGG-19 143 M and ZFNet-512 62 M weights) take a minute each in the float64
#: interpreter; they are lowered here and compared with onnxruntime in bench/bench_scale.py
COMPARE = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet",
           "vgg19", "zfnet512")


def test_light_models_present():
    assert len(MODELS) == 9, f"onnx's light models not found under {LIGHT}"


def randomized(path: Path, out: Path, seed: int = 0) -> Path:
    """The model with its constants folded and every float initializer scaled elementwise by a seeded
    factor in [0.5, 1.5] (signs and BatchNorm variances stay positive where they were)."""
    model = fold_constants(onnx.load(path), str(path))
    rng = np.random.default_rng(seed)
    for k, init in enumerate(model.graph.initializer):
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 1:
            a = (a * rng.uniform(0.5, 1.5, a.shape)).astype(np.float32)
            model.graph.initializer[k].CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(model, out)
    return out


def ort_feeds(path: Path, seed: int = 1) -> tuple[dict, list]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inits = {i.name for i in onnx.load(path, load_external_data=False).graph.initializer}
    rng = np.random.default_rng(seed)
    feeds = {i.name: rng.uniform(0, 1, [d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
             for i in sess.get_inputs() if i.name not in inits}
    return feeds, sess.run(None, feeds)


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_light_model_lowers_as_shipped(path):
    ir, _ = load_model(path)
    assert any(ir.g.nodes[n]["op"] in ("dense", "conv") for n in ir.g.nodes)
    # weights came from ConstantOfShape: folding made them initializers, nothing is left of it
    assert not any(ir.g.nodes[n]["op"] == "host" and ir.g.nodes[n]["attrs"]["op_type"] == "ConstantOfShape"
                   for n in ir.g.nodes)


@pytest.mark.parametrize("name", COMPARE)
def test_light_model_matches_onnxruntime(tmp_path, name):
    path = randomized(LIGHT / f"light_{name}.onnx", tmp_path / f"{name}.onnx")
    feeds, want = ort_feeds(path)
    ir, _ = load_model(path)
    canon = run_pipeline(ir, CompileOptions(), load_pdk("generic"), upto="fuse_activation")
    for stage in (ir, canon):
        got = ir_run_onnx_layout(stage, feeds)
        for g, w in zip(got, want):
            # outputs are softmax probabilities: compare them and their ranking
            np.testing.assert_allclose(g, w, rtol=2e-3, atol=1e-6 * float(np.max(np.abs(w))))
            assert np.argmax(g) == np.argmax(w)


@pytest.mark.parametrize("name", ["squeezenet", "inception_v1"])
def test_light_model_compiles_as_shipped_and_a_sample_verifies(tmp_path, name):
    """The whole flow on real architectures as shipped (ConstantOfShape weights, opset 9): compile,
    then sign off a seeded sample of their tiles in ngspice (the larger ones: bench/bench_scale.py)."""
    import json
    import subprocess
    import sys

    from conftest import ROOT, require_tool

    require_tool("ngspice", "libngspice")
    out = tmp_path / "out"
    run = [sys.executable, "-m", "compiler.cli"]
    r = subprocess.run([*run, "compile", str(LIGHT / f"light_{name}.onnx"), "-o", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out / "manifest.json").read_text())
    assert len(m["tiles"]) > 100 and m["partition"]["segments"][-1]["kind"] == "host"   # the softmax
    r = subprocess.run([*run, "verify", str(out), "--sample", "12", "--seed", "1", "--vectors", "8", "--jobs", "2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((out / "verify.json").read_text())
    assert rep["passed"] and rep["sample"]["verified"] >= 12
    assert len({b["layer"] for b in rep["blocks"]}) == len(m["layers"])   # every layer's largest tile
