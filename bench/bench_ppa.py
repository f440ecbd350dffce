#!/usr/bin/env python3
"""Benchmark: the chip's area, energy and speed against issue 21's targets.

`amsc report` on the default compile options (ADCs shared among 8 outputs, more where a layer's
pipeline stage has slack, across a layer's tiles and in one pool for the layers of a stage, the
readouts in the netlists and the RTL; the datapath's default lanes) for
- cnn_digits (16 held-out digits, yosys on): TOPS/mm^2 (target >= 7e-3) and the digital share of the
  latency (target <= 30 %), next to the same design with one ADC per output (--adc-share 1
  --adc-balance off), with every layer at 8 outputs an ADC (--adc-balance off), with
  a one-lane datapath (--lanes 1), one input at a time (--pipeline 1) and every convolution read a
  position at a time (--conv-blocking off), the baselines of this run, and the densest point of its
  exploration (README, "The chip RTL": --tile 128x64 --adc-share 4 --lanes 8, stop 53);
- SqueezeNet 1.1 from the onnx wheel with seeded random weights (bench_scale.randomized), one random
  224x224 image, `--engine mna --no-synth`: TOPS/W (target >= 0.63, ISAAC's) and TOPS/mm^2 (target >=
  0.03: ISAAC's 0.48 at 32 nm scaled to 130 nm by area, (130/32)^2 = 16.5), and the ADCs' utilization
  (target >= 50 %), its feature maps in SRAM macros where they are smaller than flip-flops
  (--map-memory auto), whose area the report counts without synthesis;
- ResNet-50 from the onnx wheel with seeded random weights, one random 224x224 image, `--engine mna
  --no-synth`: throughput (inputs per second), TOPS/W and TOPS/mm^2 and what dominates area and energy
  (issue 21 asks for them reported; it sets no target).
Writes bench/results/ppa.json (ppa_smoke.json with --smoke: mlp_digits, no yosys, seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_scale import randomized
from common import ROOT, amsc, parser, save

TARGETS = {"cnn_tops_per_mm2": 7e-3, "cnn_digital_share_max": 0.30, "squeezenet_tops_per_w": 0.63,
           "squeezenet_tops_per_mm2": 0.48 / (130 / 32) ** 2, "squeezenet_adc_utilization": 0.5}
KEYS = ("area_mm2", "energy_per_inference_j", "latency_s", "throughput_per_s", "tops_per_w", "tops_per_mm2")


def figures(out: Path, seconds: float) -> dict:
    rep = json.loads((out / "report.json").read_text())
    return {**{k: rep[k] for k in KEYS}, "adc_share": rep["adc_share"], "adcs": rep["periphery"]["adcs"],
            "adc_utilization": rep["periphery"]["adc_utilization"], "lanes": rep["lanes"],
            # the ADCs the layers of a pipeline stage share, and those layers' own without the pools
            "adcs_in_pools": rep["periphery"]["adcs_in_pools"],
            "adcs_pooled_layers_own": rep["periphery"]["adcs_pooled_layers_own"],
            "clocks_per_input": rep["rtl_cycles_per_input"]["total"],
            "pipeline_stages": rep["pipeline"]["stages"], "interval_s": rep["pipeline"]["interval_s"],
            "digital_share_of_latency": rep["latency_breakdown_s"]["digital_s"] / rep["latency_s"],
            "area_by": rep["dominant"]["area"], "energy_by": rep["dominant"]["energy"],
            # the feature maps held in SRAM macros (compile --map-memory; none on the digits designs)
            "sram_macros": rep["memory"]["sram_macros"], "sram_mm2": rep["area_breakdown_mm2"].get("sram", 0.0),
            "sram_leakage_j": rep["energy_breakdown_j"].get("sram_leakage", 0.0),
            "buffers_j": rep["energy_breakdown_j"]["buffers"], "seconds": seconds}


def report(model: Path, out: Path, compile_args: list, report_args: list) -> dict:
    amsc("compile", model, "-o", out, *compile_args)
    t0 = time.perf_counter()
    amsc("report", out, *report_args)
    return figures(out, time.perf_counter() - t0)


def main() -> int:
    args = parser(__doc__).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, ROOT / "designs" / "digits_testset.py", tmp / "digits"], check=True,
                       capture_output=True)
        x = tmp / "digits" / "x.npy"
        name = "mlp_digits" if args.smoke else "cnn_digits"
        rargs = ["--inputs", x, "--samples", "2" if args.smoke else "16"] + (["--no-synth"] if args.smoke else [])
        model = ROOT / "designs" / name / "model.onnx"
        res = {"design": name, "shared": report(model, tmp / "shared", [], rargs),
               "baseline_one_adc_per_output": report(model, tmp / "one", ["--adc-share", "1", "--adc-balance", "off"],
                                                     rargs),
               "baseline_every_layer_at_one_share": report(model, tmp / "even", ["--adc-balance", "off"], rargs),
               "baseline_one_lane": report(model, tmp / "lane", ["--lanes", "1"], rargs),
               "baseline_one_input_at_a_time": report(model, tmp / "seq", ["--pipeline", "1"], rargs),
               "baseline_a_position_a_read": report(model, tmp / "pos", ["--conv-blocking", "off"], rargs),
               "densest_explored": report(model, tmp / "dense", ["--tile", "128x64", "--adc-share", "4",
                                                                 "--lanes", "8"], rargs)}
        s = res["shared"]
        res["ratios"] = {base: {k: s[k] / res[base][k] for k in ("area_mm2", "latency_s", "throughput_per_s",
                                                                 "tops_per_mm2", "tops_per_w")}
                         for base in ("baseline_one_adc_per_output", "baseline_every_layer_at_one_share", "baseline_one_lane",
                                      "baseline_one_input_at_a_time", "baseline_a_position_a_read")}
        if not args.smoke:
            sq, _ = randomized("squeezenet", tmp / "squeezenet.onnx")
            img = tmp / "img.npy"
            np.save(img, np.random.default_rng(0).random((1, 3, 224, 224)).astype(np.float32))
            res["squeezenet"] = report(sq, tmp / "sq", ["--max-tiles", "20000"],
                                       ["--inputs", img, "--engine", "mna", "--no-synth"])
            rn, _ = randomized("resnet50", tmp / "resnet50.onnx")
            res["resnet50"] = report(rn, tmp / "rn", ["--max-tiles", "20000"],
                                     ["--inputs", img, "--engine", "mna", "--no-synth"])
    res["targets"] = TARGETS
    res["met"] = {"cnn_tops_per_mm2": s["tops_per_mm2"] >= TARGETS["cnn_tops_per_mm2"],
                  "cnn_digital_share": s["digital_share_of_latency"] <= TARGETS["cnn_digital_share_max"],
                  "cnn_tops_per_mm2_densest_explored":
                      res["densest_explored"]["tops_per_mm2"] >= TARGETS["cnn_tops_per_mm2"]}
    if "squeezenet" in res:
        q = res["squeezenet"]
        res["met"].update(squeezenet_tops_per_w=q["tops_per_w"] >= TARGETS["squeezenet_tops_per_w"],
                          squeezenet_tops_per_mm2=q["tops_per_mm2"] >= TARGETS["squeezenet_tops_per_mm2"],
                          squeezenet_adc_utilization=q["adc_utilization"] >= TARGETS["squeezenet_adc_utilization"])
    path = save("ppa", res, args.smoke)
    print(json.dumps({"design": res["design"], "shared": s, "densest_explored": res["densest_explored"],
                      "ratios": res["ratios"], "met": res["met"],
                      **{k: res[k] for k in ("squeezenet", "resnet50") if k in res}}, indent=1))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
