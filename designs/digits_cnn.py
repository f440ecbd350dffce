"""The bundled digits CNNs, trained with numpy on scikit-learn's 8x8 digits (shared by
designs/cnn_digits and designs/cnn_signed):

    input [N, 1, 8, 8]
    Conv 1->8, 3x3, pad 1 -> act -> MaxPool 2x2 -> Conv 8->16, 3x3, pad 1 -> act -> Flatten -> Gemm 256->10

``act`` is ReLU, or LeakyReLU(alpha) (then every map between the layers is signed); the input is
pixels in [0, 1], or centred to 2 * pixel - 1 in [-1, 1] (a signed, normalized input).
Plain minibatch Adam on softmax cross-entropy, fixed seeds: the same run gives the same weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from compiler.ir.kernels import im2col  # noqa: E402
from digits import save, split  # noqa: E402

GEO = ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1))  # kernel, stride, pads, dilation of both convolutions


def conv_fwd(x, W, b):
    cols = im2col(x, *GEO)                                   # [N, P, C*9]
    y = cols @ W.reshape(W.shape[0], -1).T + b               # [N, P, Cout]
    h = x.shape[2]
    return y.transpose(0, 2, 1).reshape(x.shape[0], W.shape[0], h, h), cols


def conv_bwd(dy, cols, W, x_shape):
    n, cout, h, w = dy.shape
    dyp = dy.reshape(n, cout, h * w).transpose(0, 2, 1)      # [N, P, Cout]
    dW = np.einsum("npo,npk->ok", dyp, cols).reshape(W.shape)
    db = dyp.sum(axis=(0, 1))
    dcols = (dyp @ W.reshape(cout, -1)).reshape(n, h, w, x_shape[1], 3, 3)
    dxp = np.zeros((n, x_shape[1], h + 2, w + 2))
    for ky in range(3):
        for kx in range(3):
            dxp[:, :, ky:ky + h, kx:kx + w] += dcols[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return dW, db, dxp[:, :, 1:-1, 1:-1]


def act(z, alpha):
    return np.maximum(z, 0) if alpha is None else np.where(z > 0, z, alpha * z)


def dact(z, alpha):
    return (z > 0) if alpha is None else np.where(z > 0, 1.0, alpha)


def forward(p, x, alpha=None):
    z1, c1 = conv_fwd(x, p["W1"], p["b1"])
    a1 = act(z1, alpha)
    n, c, h, w = a1.shape
    blocks = a1.reshape(n, c, h // 2, 2, w // 2, 2)
    m1 = blocks.max(axis=(3, 5))
    z2, c2 = conv_fwd(m1, p["W2"], p["b2"])
    a2 = act(z2, alpha)
    f = a2.reshape(n, -1)
    logits = f @ p["W3"].T + p["b3"]
    return logits, (x, z1, c1, blocks, m1, z2, c2, a2, f)


def backward(p, cache, dlogits, alpha=None):
    x, z1, c1, blocks, m1, z2, c2, a2, f = cache
    g = {"W3": dlogits.T @ f, "b3": dlogits.sum(0)}
    da2 = (dlogits @ p["W3"]).reshape(a2.shape) * dact(z2, alpha)
    g["W2"], g["b2"], dm1 = conv_bwd(da2, c2, p["W2"], m1.shape)
    mask = blocks == m1[:, :, :, None, :, None]
    mask = mask / mask.sum(axis=(3, 5), keepdims=True)      # ties share the gradient
    da1 = (mask * dm1[:, :, :, None, :, None]).reshape(z1.shape) * dact(z1, alpha)
    g["W1"], g["b1"], _ = conv_bwd(da1, c1, p["W1"], x.shape)
    return g


def train(xtr, ytr, epochs=40, batch=32, lr=2e-3, seed=0, alpha=None):
    rng = np.random.default_rng(seed)
    he = lambda *s: rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))  # noqa: E731
    p = {"W1": he(8, 1, 3, 3), "b1": np.zeros(8), "W2": he(16, 8, 3, 3), "b2": np.zeros(16),
         "W3": he(10, 256), "b3": np.zeros(10)}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(xtr))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            logits, cache = forward(p, xtr[idx], alpha)
            e = np.exp(logits - logits.max(1, keepdims=True))
            prob = e / e.sum(1, keepdims=True)
            prob[np.arange(len(idx)), ytr[idx]] -= 1
            g = backward(p, cache, prob / len(idx), alpha)
            t += 1
            for k in p:
                g[k] = g[k] + 1e-4 * p[k] * k.startswith("W")
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                p[k] -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
    return p


def build(folder: Path, name: str, alpha: float | None = None, centred: bool = False) -> float:
    """Train and write folder/model.onnx and folder/calib.npy; returns the held-out accuracy."""
    xtr, xte, ytr, yte = split()
    xtr, xte = xtr.reshape(-1, 1, 8, 8), xte.reshape(-1, 1, 8, 8)
    if centred:
        xtr, xte = 2 * xtr - 1, 2 * xte - 1
    p = train(xtr, ytr, alpha=alpha)
    acc = float(np.mean(forward(p, xte, alpha)[0].argmax(1) == yte))
    print(f"{name}: test accuracy {acc:.4f} on {len(yte)} held-out digits")
    f32 = {k: v.astype(np.float32) for k, v in p.items()}
    inits = [numpy_helper.from_array(f32[k], k) for k in sorted(f32)]
    pads = [1, 1, 1, 1]
    def activation(x, y, k):
        if alpha is None:
            return helper.make_node("Relu", [x], [y], name=f"relu{k}")
        return helper.make_node("LeakyRelu", [x], [y], name=f"lrelu{k}", alpha=alpha)

    nodes = [
        helper.make_node("Conv", ["input", "W1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=pads),
        activation("c1", "r1", 1),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "W2", "b2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=pads),
        activation("c2", "r2", 2),
        helper.make_node("Flatten", ["r2"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "W3", "b3"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
                              initializer=inits)
    save(graph, folder, xtr[:128])
    return acc
