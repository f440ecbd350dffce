#!/usr/bin/env python3
"""Train the bundled MLP (64-32-10, ReLU) on scikit-learn's 8x8 digits and write it as
model.onnx and as model.yaml + weights.npz (the same weights). Deterministic (fixed seeds).

Inputs are pixel intensities scaled to [0, 1] (the data set's 0..16 divided by 16).
Run:  .venv/bin/python designs/mlp_digits/make_model.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from sklearn.neural_network import MLPClassifier

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from digits import save, split  # noqa: E402


def main() -> int:
    xtr, xte, ytr, yte = split()
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", solver="adam", alpha=1e-4,
                        max_iter=600, random_state=0, tol=1e-6, n_iter_no_change=30)
    clf.fit(xtr, ytr)
    acc = clf.score(xte, yte)
    print(f"mlp_digits: test accuracy {acc:.4f} on {len(yte)} held-out digits ({clf.n_iter_} epochs)")

    W1, W2 = (w.T.astype(np.float32) for w in clf.coefs_)          # [out, in]
    b1, b2 = (b.astype(np.float32) for b in clf.intercepts_)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((W1, "fc1.weight"), (b1, "fc1.bias"), (W2, "fc2.weight"), (b2, "fc2.bias"))]
    nodes = [
        helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h1"], name="fc1", transB=1),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("Gemm", ["a1", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "mlp_digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    save(graph, HERE, xtr[:128])
    np.savez(HERE / "weights.npz", fc1_weight=W1, fc1_bias=b1, fc2_weight=W2, fc2_bias=b2)
    (HERE / "model.yaml").write_text(f"""\
# The mlp_digits network as an amsc YAML graph (schema: docs/yaml-graph.md).
# Same weights as model.onnx; written by make_model.py. Test accuracy (float): {acc:.4f}
amsc_graph: 1
name: mlp_digits
inputs:
  - {{name: input, shape: [64]}}      # 8x8 pixels scaled to [0, 1]
nodes:
  - name: fc1
    op: dense
    weight: {{file: weights.npz, key: fc1_weight}}   # [32, 64]
    bias: {{file: weights.npz, key: fc1_bias}}
    activation: relu
  - name: fc2
    op: dense
    weight: {{file: weights.npz, key: fc2_weight}}   # [10, 32]
    bias: {{file: weights.npz, key: fc2_bias}}
outputs: [fc2]
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
