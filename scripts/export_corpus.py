"""Write the conformance corpus of real exporter output: tests/data/exported/<name>.onnx.

Each model is a PyTorch module (torchvision's own classes where it has them) at reduced width,
with weights drawn from a fixed seed, exported exactly as a user would: ``torch.onnx.export`` with
the classic TorchScript exporter at opset 17 and batch 1 (its defaults), and one model through the
dynamo exporter with its weights in an external ``.onnx.data`` file. The suite never imports torch:
it reads these files (tests/unit/test_exported_corpus.py).

Run with torch and torchvision installed (not amsc's dependencies; a separate venv is fine):

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx onnxscript
    /tmp/torchenv/bin/python scripts/export_corpus.py tests/data/exported

Written with torch 2.14.1, torchvision 0.29.1, onnx 1.23.2, onnxscript (as pip resolved it); the
versions are also recorded in OUT/VERSIONS.txt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision
from torch import nn

OPSET = 17


class Conv1dNet(nn.Module):
    """A keyword-spotting style 1-D CNN over a 128-sample waveform."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv1d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                               nn.Conv1d(8, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
                               nn.Conv1d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                               nn.Linear(16, 10))

    def forward(self, x):
        return self.f(x)


class UNet(nn.Module):
    """Two levels: a strided encoder, a ConvTranspose and an nn.Upsample decoder with skips."""

    def __init__(self):
        super().__init__()
        self.e1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        self.e2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.e3 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.up1 = nn.ConvTranspose2d(16, 16, 2, stride=2)
        self.d1 = nn.Sequential(nn.Conv2d(32, 8, 3, padding=1), nn.ReLU())
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.d2 = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))

    def forward(self, x):
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        d = self.d1(torch.cat([self.up1(c), b], 1))
        return self.d2(torch.cat([self.up2(d), a], 1))


class RNNClassifier(nn.Module):
    def __init__(self, cell: str, bidirectional: bool = False):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(16, 32, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(32 * (2 if bidirectional else 1), 10)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[:, -1])


class StackedLSTM(nn.Module):
    """Two bidirectional LSTM layers, sequence first (``batch_first=False``), mean over time."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(16, 24, num_layers=2, bidirectional=True)
        self.head = nn.Linear(48, 10)

    def forward(self, x):               # x: [T, N, 16]
        y, _ = self.rnn(x)
        return self.head(y.mean(0))


class LastState(nn.Module):
    """A recurrent classifier on the last hidden state h_n (ONNX's Y_h), batch first."""

    def __init__(self, cell: str):
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(16, 32, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        _, h = self.rnn(x)
        return self.head((h[0] if isinstance(h, tuple) else h)[-1])


class Encoder(nn.Module):
    """nn.TransformerEncoder as written in the PyTorch tutorials (sequence first) with a class head."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(64, 10)

    def forward(self, x):               # x: [T, N, 64]
        return self.head(self.enc(x).mean(0))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.f(x)


def fire_net() -> nn.Module:
    """Two of torchvision's SqueezeNet fire modules (squeeze, then a 1x1 and a 3x3 expand
    concatenated) between SqueezeNet 1.1's stem and classifier, at 32x32: small enough to simulate
    its RTL in the suite."""
    from torchvision.models.squeezenet import Fire

    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                         Fire(16, 8, 16, 16), Fire(32, 8, 16, 16),
                         nn.Conv2d(32, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def models():
    """(name, module, example input, exporter) in a fixed order."""
    tv = torchvision.models
    return [
        ("transformer_encoder", Encoder(), torch.randn(16, 1, 64), "classic"),
        ("vit_tiny", tv.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64,
                                          mlp_dim=128, num_classes=10), torch.randn(1, 3, 32, 32), "classic"),
        ("lstm_classifier", RNNClassifier("lstm"), torch.randn(1, 20, 16), "classic"),
        ("gru_classifier", RNNClassifier("gru", bidirectional=True), torch.randn(1, 20, 16), "classic"),
        ("conv1d_kws", Conv1dNet(), torch.randn(1, 1, 128), "classic"),
        ("unet_small", UNet(), torch.randn(1, 1, 32, 32), "classic"),
        ("mobilenet_v3_small", tv.mobilenet_v3_small(num_classes=10, width_mult=0.25), torch.randn(1, 3, 64, 64),
         "classic"),
        ("shufflenet_v2", tv.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=10),
         torch.randn(1, 3, 64, 64), "classic"),
        ("squeezenet1_1", tv.squeezenet1_1(num_classes=10), torch.randn(1, 3, 64, 64), "classic"),
        ("mlp_dynamo", MLP(), torch.randn(1, 64), "dynamo"),
        # recurrent layers in the other forms exporters write: stacked and bidirectional, sequence
        # first; the last state Y_h, from the classic and the dynamo exporter
        ("lstm_stacked", StackedLSTM(), torch.randn(20, 1, 16), "classic"),
        ("gru_last_state", LastState("gru"), torch.randn(1, 20, 16), "classic"),
        ("lstm_dynamo", LastState("lstm"), torch.randn(1, 20, 16), "dynamo"),
        ("fire_net", fire_net(), torch.randn(1, 3, 32, 32), "classic"),
    ]


def seed_weights(module: nn.Module, k: int) -> None:
    """Model ``k``'s weights from a fixed seed (not the init's RNG stream), in eval mode."""
    torch.manual_seed(1000 + k)
    for p in module.parameters():
        with torch.no_grad():
            # He-scaled weights keep a deep ReLU net's output depending on its input
            p.copy_(torch.randn_like(p) * (2.0 / max(1, p[0].numel())) ** 0.5 if p.dim() > 1
                    else torch.randn_like(p) * 0.01)
    for bname, b in module.named_buffers():          # batch-norm statistics: a plausible spread
        with torch.no_grad():
            if bname.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
            elif bname.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)
    module.eval()


def main(out: Path, only: set | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for k, (name, module, x, exporter) in enumerate(models()):
        if only and name not in only:
            continue
        seed_weights(module, k)
        path = out / f"{name}.onnx"
        if exporter == "dynamo":
            prog = torch.onnx.export(module, (x,), dynamo=True, opset_version=18)
            prog.save(str(path), external_data=True)
        else:
            torch.onnx.export(module, (x,), str(path), opset_version=OPSET, dynamo=False,
                              input_names=["input"], output_names=["output"])
        print(f"{name}: {path.stat().st_size} bytes")
    (out / "VERSIONS.txt").write_text(f"torch {torch.__version__}\ntorchvision {torchvision.__version__}\n"
                                      f"opset {OPSET} (classic exporter), 18 (dynamo exporter)\n")


if __name__ == "__main__":
    # python scripts/export_corpus.py OUT [name ...]: every model, or the named ones
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/exported"), set(sys.argv[2:]) or None)
