"""What the design scripts (designs/*/make_model.py) share to train their MLPs in numpy: the generic
PDK's 16-level quantizer (amsc's quantize_w: step = max|w| / 15) for quantization-aware
fine-tuning, the initial weights of a one-hidden-layer MLP, and Adam (Kingma and Ba, 2015; beta1 0.9, beta2 0.999, eps 1e-8) on a list of arrays."""

from __future__ import annotations

import numpy as np

LEVELS = 16      # the generic PDK's conductance levels (compiler/pdk_templates/generic/pdk.yaml)


def quantize(w: np.ndarray) -> np.ndarray:
    """w on the generic PDK's 16 signed levels."""
    step = np.max(np.abs(w)) / (LEVELS - 1)
    return np.rint(w / step) * step


def init_mlp(rng, hidden: int, n: int) -> list[np.ndarray]:
    """``[W1 (hidden x n), b1, W2 (n x hidden), b2]`` of ``W2 tanh(W1 x + b1) + b2``, drawn from ``rng``."""
    return [rng.normal(0, 1.0, (hidden, n)), rng.normal(0, 0.5, hidden),
            rng.normal(0, 1.0 / np.sqrt(hidden), (n, hidden)), np.zeros(n)]


class Adam:
    """Adam on ``params`` (updated in place)."""

    def __init__(self, params: list[np.ndarray]):
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, k: int, grads: list[np.ndarray], lr: float) -> None:
        """Step ``k`` (from 1) with gradients ``grads`` at learning rate ``lr``."""
        for p, g, mk, vk in zip(self.params, grads, self.m, self.v):
            mk *= 0.9
            mk += 0.1 * g
            vk *= 0.999
            vk += 0.001 * g * g
            p -= lr * (mk / (1 - 0.9 ** k)) / (np.sqrt(vk / (1 - 0.999 ** k)) + 1e-8)
