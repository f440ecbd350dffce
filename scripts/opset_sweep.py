"""Export the corpus models at every opset each PyTorch exporter writes, compile each with amsc and
run it against onnxruntime: a table of what compiles, the share of MACs on crossbars, the host
nodes and the SNR, per model and opset.

Needs torch and torchvision (as scripts/export_corpus.py, whose models and seeded weights it uses)
and amsc in another interpreter:

    /tmp/torchenv/bin/python scripts/opset_sweep.py --amsc-python .venv/bin/python [--out DIR]

The classic (TorchScript) exporter writes opsets 7 to 20, the dynamo exporter 18 and up; an
exporter that refuses a model at an opset is recorded as such (it is not amsc's failure). Four of
these exports are kept in tests/data/exported/opsets/ (<model>_opset<N>.onnx, the classic
exporter's), where the suite compiles and runs them without torch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_corpus import models, seed_weights  # noqa: E402

CLASSIC = list(range(7, 21))
DYNAMO = [18, 19, 20, 21]


def export(module, x, path: Path, exporter: str, opset: int) -> str | None:
    """Write the model; the exporter's own refusal as a short string, or None."""
    try:
        if exporter == "dynamo":
            prog = torch.onnx.export(module, (x,), dynamo=True, opset_version=opset)
            prog.save(str(path), external_data=True)
        else:
            torch.onnx.export(module, (x,), str(path), opset_version=opset, dynamo=False,
                              input_names=["input"], output_names=["output"])
    except Exception as e:  # noqa: BLE001 - the exporters raise many types
        return (str(e).strip().splitlines() or [type(e).__name__])[0][:80]
    return None


def amsc(py: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([py, "-m", "compiler.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--amsc-python", required=True, help="the interpreter amsc is installed in")
    ap.add_argument("--out", type=Path, default=None, help="where to keep the exports (default: a temp dir)")
    ap.add_argument("--models", nargs="*", default=None, help="a subset of the corpus names")
    args = ap.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="amsc-opsets-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (name, module, x, _) in enumerate(models()):
        if args.models and name not in args.models:
            continue
        seed_weights(module, k)
        shape = tuple(x.shape[1:]) if name != "transformer_encoder" else (x.shape[0], x.shape[2])
        feed = work / f"{name}_x.npy"
        np.save(feed, np.random.default_rng(0).uniform(0, 1, (8, *shape)).astype(np.float32))
        for exporter, opsets in (("classic", CLASSIC), ("dynamo", DYNAMO)):
            for opset in opsets:
                d = work / f"{name}_{exporter}_{opset}"
                d.mkdir(exist_ok=True)
                model = d / f"{name}.onnx"
                refused = export(module, x, model, exporter, opset)
                row = {"model": name, "exporter": exporter, "opset": opset}
                if refused:
                    rows.append({**row, "result": f"exporter refuses: {refused}"})
                    print(json.dumps(rows[-1]), flush=True)
                    continue
                out = d / "out"
                r = amsc(args.amsc_python, "compile", model, "-o", out, "--weight-bits", "8", "--max-tiles", "20000")
                if r.returncode:
                    rows.append({**row, "result": "refused: " + r.stderr.strip().splitlines()[-1][:160]})
                    print(json.dumps(rows[-1]), flush=True)
                    continue
                m = json.loads((out / "manifest.json").read_text())
                segs = m["partition"]["segments"]
                xbar, host = sum(s["macs_crossbar"] for s in segs), sum(s["macs_host"] for s in segs)
                r = amsc(args.amsc_python, "run", out, "--inputs", feed)
                line = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
                snr = line.split("SNR ")[1].split(" dB")[0] if "SNR " in line else "-"
                rows.append({**row, "result": "compiles" if r.returncode == 0 else "run failed: " + line[:120],
                             "share": round(100 * xbar / max(1, xbar + host), 2),
                             "host_nodes": sum(n["home"] == "host" for n in m["partition"]["nodes"]),
                             "snr_db": snr})
                print(json.dumps(rows[-1]), flush=True)
    (work / "sweep.json").write_text(json.dumps(rows, indent=1))
    print(f"{len(rows)} exports; results in {work / 'sweep.json'}")


if __name__ == "__main__":
    main()
