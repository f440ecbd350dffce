"""The compiled design on disk (compiler/design/): ownership, confinement, integrity, locking and
stale results, each reproducer of the hostile probe (issue 20) as a regression test."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import MLP, amsc, require_tool
from helpers import assert_clean_error, edit_manifest, rehash


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst, symlinks=True))




def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ ownership

def test_compile_refuses_a_folder_with_a_foreign_manifest(tmp_path):
    f = tmp_path / "f"
    f.mkdir()
    (f / "manifest.json").write_text('{"name": "x"}')
    (f / "thesis.tex").write_text("precious")
    r = amsc("compile", MLP / "model.onnx", "-o", f)
    assert_clean_error(r, str(f), "not an amsc design", "nothing was deleted")
    assert (f / "thesis.tex").read_text() == "precious" and (f / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"], "temporary folder left behind"


def test_compile_refuses_an_amsc_folder_holding_a_users_file(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    shutil.copy(MLP / "model.onnx", out / "model.onnx")     # the model file itself, sitting there
    (out / "spice" / "notes.txt").write_text("mine")
    before = _tree(out)
    r = amsc("compile", out / "model.onnx", "-o", out, "--tile", "32x32")
    assert_clean_error(r, "holds files amsc did not write", "model.onnx", "spice/notes.txt", "nothing was deleted")
    assert _tree(out) == before


def test_compile_refuses_an_amsc_folder_with_an_edited_netlist(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    tb = sorted((out / "spice" / "tb").iterdir())[0]
    tb.write_text(tb.read_text() + "* my edit\n")
    r = amsc("compile", MLP / "model.onnx", "-o", out, "--tile", "32x32")
    assert_clean_error(r, "changed since amsc wrote it")
    assert tb.read_text().endswith("* my edit\n")


def test_compile_replaces_its_own_folder_with_results(mlp_out, tmp_path, digits):
    """A design amsc wrote, with what its commands wrote into it (results, caches), is replaced whole."""
    require_tool("libngspice", "iverilog")
    out = _copy(mlp_out, tmp_path / "o")
    assert amsc("verify", out, "--vectors", "2", "--jobs", "1").returncode == 0
    assert amsc("rtl-sim", out, "--inputs", digits / "x.npy", "--limit", "2").returncode == 0
    assert (out / "verify.json").is_file() and (out / ".verify-cache").is_dir() and (out / "rtl_sim.json").is_file()
    r = amsc("compile", MLP / "model.onnx", "-o", out)
    assert r.returncode == 0, r.stderr
    assert not (out / "verify.json").exists() and not (out / ".verify-cache").exists()
    assert (out / ".amsc-design").is_file()


# ------------------------------------------------------------------ confinement

@pytest.mark.parametrize("field", ["testbench", "subckt_file", "conductances"])
@pytest.mark.parametrize("command", ["verify", "run", "evaluate", "rtl-sim", "report"])
def test_manifest_paths_cannot_leave_the_folder(mlp_out, tmp_path, digits, field, command):
    out = _copy(mlp_out, tmp_path / "o")
    evil = "../../../../../../../../etc/passwd"

    def change(m):
        t = m["tiles"][0]
        if field == "conductances":
            t["conductances"]["gpos"] = evil
        else:
            t[field] = evil
    edit_manifest(out, change)
    extra = {"verify": [], "run": ["--inputs", digits / "x.npy"], "evaluate": ["--inputs", digits / "x.npy"],
             "rtl-sim": ["--inputs", digits / "x.npy"], "report": ["--inputs", digits / "x.npy", "--no-synth"]}
    r = amsc(command, out, *extra[command])
    assert_clean_error(r, "manifest.json", "is not a file the manifest lists", "outside")


def test_the_readout_testbench_inputs_cannot_leave_the_folder(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    edit_manifest(out, lambda m: m["readout"].update(inputs="../../../../../../../../etc/passwd"))
    assert_clean_error(amsc("verify", out), "readout.inputs", "is not a file the manifest lists", "outside")


def test_listed_symlink_out_of_the_folder_is_refused(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    secret = tmp_path / "secret.sp"
    secret.write_text("* not yours\n")
    tb = sorted((out / "spice" / "tb").iterdir())[0]
    tb.unlink()
    tb.symlink_to(secret)
    rehash(out, str(tb.relative_to(out)))
    r = amsc("verify", out)
    assert_clean_error(r, "points outside the design's folder")


def test_a_tampered_files_f_cannot_feed_the_simulator_outside_files(mlp_out, tmp_path, digits):
    out = _copy(mlp_out, tmp_path / "o")
    ff = out / "rtl" / "sim" / "files.f"
    ff.write_text("../../../../../../etc/passwd\n" + ff.read_text())
    rehash(out, "rtl/sim/files.f")
    r = amsc("rtl-sim", out, "--inputs", digits / "x.npy", "--limit", "1")
    assert_clean_error(r, "files.f", "points outside the design's folder")


# ------------------------------------------------------------------ integrity

@pytest.mark.parametrize("change, needle", [
    (lambda m: m["pdk"].update(adc_bits=99), "pdk.adc_bits"),
    (lambda m: m["tiles"][0].update(rows=[0, 9999]), "tiles[0].rows"),
    (lambda m: m.update(tiles=[]), "field 'tiles'"),
    (lambda m: m["tiles"][0].update(rf_ohm=-1), "tiles[0].rf_ohm"),
    (lambda m: m["files"].append(dict(m["files"][0])), "listed twice"),
    (lambda m: m["tiles"][0].update(adc_share=0), "tiles[0].adc_share"),
    (lambda m: m["tiles"][0].update(adc_group=["fc_adc0"]), "tiles[0].adc_group"),
    (lambda m: m["tiles"][0].update(adc_pool="stage9"), "tiles[0].adc_pool"),
    (lambda m: m["readout"].update(pools={"stage0": "8"}), "readout.pools"),
])
def test_out_of_range_manifest_values_are_refused(mlp_out, tmp_path, change, needle):
    out = _copy(mlp_out, tmp_path / "o")
    edit_manifest(out, change)
    assert_clean_error(amsc("verify", out), "manifest.json", needle)


def test_a_nan_literal_in_the_manifest_is_refused(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    text = (out / "manifest.json").read_text()
    m = json.loads(text)
    old = json.dumps(m["tiles"][0]["rf_ohm"])
    (out / "manifest.json").write_text(text.replace(f'"rf_ohm":{old}', '"rf_ohm":NaN', 1)
                                       .replace(f'"rf_ohm": {old}', '"rf_ohm": NaN', 1))
    assert "NaN" in (out / "manifest.json").read_text()
    assert_clean_error(amsc("verify", out), "manifest.json", "NaN is not a JSON number")


def test_verify_reports_files_nobody_listed(mlp_out, tmp_path):
    out = _copy(mlp_out, tmp_path / "o")
    (out / "rtl" / "zz_evil.v").write_text("module evil; endmodule\n")
    assert_clean_error(amsc("verify", out), "rtl/zz_evil.v", "does not list")


# ------------------------------------------------------------------ locking and stale results

def test_compile_refuses_to_replace_a_folder_in_use(mlp_out, tmp_path):
    from compiler.design import using

    out = _copy(mlp_out, tmp_path / "o")
    before = _tree(out)
    with using(out, "run"):
        r = amsc("compile", MLP / "model.onnx", "-o", out)
    assert_clean_error(r, "another amsc command", "was not replaced")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"], "temporary folder left behind"
    assert amsc("compile", MLP / "model.onnx", "-o", out).returncode == 0   # free again: replaced


def test_a_command_removes_its_stale_result_when_it_starts(mlp_out, tmp_path):
    """An interrupted (here: failing) verify never leaves the previous passed verify.json in place."""
    require_tool("libngspice")
    out = _copy(mlp_out, tmp_path / "o")
    assert amsc("verify", out, "--vectors", "2").returncode == 0
    assert json.loads((out / "verify.json").read_text())["passed"]
    (out / "stray.txt").write_text("x")     # this verify now fails before it simulates anything
    assert_clean_error(amsc("verify", out, "--vectors", "2"), "stray.txt")
    assert not (out / "verify.json").exists() and not (out / "verify.html").exists()


def test_full_disk_while_writing_a_result_is_one_line_and_leaves_nothing(mlp_out, tmp_path, monkeypatch, capsys):
    import errno
    import os

    from compiler import cli
    from compiler.design import folder

    out = _copy(mlp_out, tmp_path / "o")
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).uniform(0, 1, (4, 64)))
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith("eval.json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(folder.os, "replace", full)
    code = cli.main(["evaluate", str(out), "--inputs", str(x)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and "No space left" in err[-1], err
    assert not (out / "eval.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".amsc-design"]


def test_read_only_folder_is_one_line(mlp_out, tmp_path, monkeypatch, capsys):
    """(Tests run as root, which ignores permission bits: the read-only file system is simulated.)"""
    import errno

    from compiler import cli
    from compiler.design import folder

    out = _copy(mlp_out, tmp_path / "o")

    def read_only(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(folder.tempfile, "mkstemp", read_only)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 64)))
    for command in (["verify", str(out)], ["evaluate", str(out), "--inputs", str(x)],
                    ["rtl-sim", str(out), "--inputs", str(x)], ["report", str(out), "--inputs", str(x)]):
        code = cli.main(command)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "Read-only file system" in err[0] and "writes" in err[0], err


def test_output_name_too_long(tmp_path):
    out = tmp_path / ("o" * 300)
    r = amsc("compile", MLP / "model.onnx", "-o", out)
    assert_clean_error(r, "bytes; at most 200")


# ------------------------------------------------------------------ Dask scheduler address

def test_scheduler_at_an_http_server_fails_in_one_line(mlp_out, tmp_path):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    srv = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        t0 = time.monotonic()
        r = amsc("verify", _copy(mlp_out, tmp_path / "o"), "--scheduler",
                 f"tcp://127.0.0.1:{srv.server_address[1]}", timeout=120)
        assert time.monotonic() - t0 < 30
    finally:
        srv.shutdown()
    assert_clean_error(r, "no Dask scheduler answered", "sent no Dask handshake")


def test_scheduler_sending_garbage_fails_in_one_line(mlp_out, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)

    def serve():
        for _ in range(2):
            try:
                c, _ = s.accept()
            except OSError:
                return
            c.sendall(b"\xff" * 64)          # a 'length' of 2^64 - 1 bytes
            time.sleep(1)
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        r = amsc("verify", _copy(mlp_out, tmp_path / "o"), "--scheduler", f"tcp://127.0.0.1:{s.getsockname()[1]}",
                 timeout=120)
    finally:
        s.close()
    assert_clean_error(r, "not a Dask handshake")


@pytest.mark.parametrize("addr", ["foo", "tcp://host", "tcp://127.0.0.1:99999", "http://127.0.0.1:8786/x y"])
def test_malformed_scheduler_address(mlp_out, tmp_path, addr):
    r = amsc("verify", _copy(mlp_out, tmp_path / "o"), "--scheduler", addr)
    assert_clean_error(r, "--scheduler", "not a Dask scheduler address")


# ------------------------------------------------------------------ the options it was built with

def test_the_manifest_spells_out_every_default_and_rebuilds_the_same_chip(tmp_path, monkeypatch):
    """The manifest keeps the options a design was compiled with, each default the compiler or the
    PDK chose written out (the tile, the outputs per ADC and their balance, the lanes, the pipeline's
    stages), so that what reads the design later (program's recompile, evaluate's placement banks)
    builds the chip it was compiled as, not one at a later version's defaults: compiled again from
    those options, every file is the same."""
    import compiler.options as o
    from compiler.driver import compile_model
    from compiler.options import DEFAULT_LANES, DEFAULT_PIPELINE, CompileOptions, route_banks_of

    a = tmp_path / "a"
    r = amsc("compile", MLP / "model.onnx", "-o", a)
    assert r.returncode == 0, r.stderr
    m = json.loads((a / "manifest.json").read_text())
    opts = m["options"]
    assert (opts["tile_rows"], opts["tile_cols"]) == (64, 64)          # the generic PDK's tile
    assert opts["lanes"] == DEFAULT_LANES == m["rtl_datapath"]["lanes"] and opts["pipeline"] == DEFAULT_PIPELINE
    assert opts["adc_share"] == m["readout"]["share"] == 8 and opts["adc_balance"] == "on"
    monkeypatch.setattr(o, "DEFAULT_LANES", 2)                          # a later version's default
    assert route_banks_of(opts) == DEFAULT_LANES
    b = tmp_path / "b"
    compile_model(a / m["source"]["file"], b, CompileOptions.from_json(opts))
    mb = json.loads((b / "manifest.json").read_text())
    assert mb["options"] == opts
    assert len(mb["files"]) == len(m["files"]) > 30
    assert {f["path"]: f["sha256"] for f in mb["files"]} == {f["path"]: f["sha256"] for f in m["files"]}
