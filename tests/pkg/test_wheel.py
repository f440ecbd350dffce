"""Packaging: a wheel built from this checkout, installed into a fresh venv, compiles a bundled
design from another folder, with the PDKs it ships as package data (not the checkout's)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig

from conftest import MLP, ROOT


def test_wheel_installs_and_compiles_from_any_folder(tmp_path):
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = dist.glob("amsc-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    # the fresh venv gets amsc from the wheel only; its dependencies come from this interpreter's
    # site-packages through a .pth line (which does not run the checkout's editable-install hook)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (venv / "lib").mkdir(exist_ok=True)
    with open(f"{site}/deps.pth", "w") as fh:
        fh.write(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import compiler, compiler.pdk as p; print(compiler.__file__); "
                            "print(p.BUNDLED); print(p.available_pdks())"],
                           capture_output=True, text=True, cwd=work, check=True).stdout.split("\n")
    assert str(venv) in where[0] and str(ROOT) not in where[0], where
    assert str(venv) in where[1] and "generic" in where[2] and "sky130_1t1r" in where[2], where
    r = subprocess.run([str(venv / "bin" / "amsc"), "compile", str(MLP / "model.onnx"), "-o", "out"],
                       capture_output=True, text=True, cwd=work, timeout=600)
    assert r.returncode == 0, r.stderr
    m = json.loads((work / "out" / "manifest.json").read_text())
    assert m["pdk"]["name"] == "generic" and len(m["tiles"]) == 2
