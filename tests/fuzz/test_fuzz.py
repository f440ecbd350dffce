"""Property-based fuzzing of every front end and numeric option (see harness.py for what is mutated
and what a passing case is). The suite runs a short, derandomized sample of each target;
``make fuzz`` runs thousands (AMSC_FUZZ_CASES per target) and records the count (AMSC_FUZZ_LOG)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import amsc
from fuzz.harness import (DYNAMICS_YAML, GRAPH_YAML, OPTION_VALUES, OUTPUT, check_case, conv_model, dense_model,
                     mutate_onnx, mutate_yaml)

CASES = int(os.environ.get("AMSC_FUZZ_CASES", "8"))
LOG = os.environ.get("AMSC_FUZZ_LOG")
FUZZ = settings(max_examples=CASES, deadline=None, database=None, derandomize=True, print_blob=True,
                suppress_health_check=list(HealthCheck))


class _Tally:
    """Cases run and failures seen by one target (written to AMSC_FUZZ_LOG for 'make fuzz')."""

    def __init__(self, target: str):
        self.target, self.cases, self.failures, self.codes = target, 0, [], {}

    def __call__(self, argv, folder, inputs, codes=(0, 2)):
        from fuzz import harness

        self.cases += 1
        bad = check_case(argv, folder, inputs, codes)
        self.codes[str(harness.LAST_CODE)] = self.codes.get(str(harness.LAST_CODE), 0) + 1
        if bad is not None:
            self.failures.append(f"{' '.join(map(str, argv))[:200]}: {bad}")
        assert bad is None, bad

    def close(self):
        if LOG:
            with open(LOG, "a") as fh:
                fh.write(json.dumps({"target": self.target, "cases": self.cases, "exit_codes": self.codes,
                                     "failures": sorted(set(self.failures))}) + "\n")


@pytest.fixture
def tally(request):
    t = _Tally(request.node.name)
    yield t
    t.close()


def _case_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="amsc-fuzz-"))


def _compile_case(tally, filename: str, content: bytes) -> None:
    """One case: ``content`` written as ``filename`` in a fresh folder and compiled there."""
    d = _case_dir()
    try:
        (d / filename).write_bytes(content)
        tally(["compile", str(d / filename), "-o", str(d / OUTPUT)], d, {filename})
    finally:
        shutil.rmtree(d, ignore_errors=True)


@FUZZ
@given(data=st.data())
def test_fuzz_onnx_front_end(tally, data):
    base = data.draw(st.sampled_from([dense_model, conv_model]), label="base")()
    _compile_case(tally, "m.onnx", mutate_onnx(base, data))


@FUZZ
@given(data=st.data())
def test_fuzz_yaml_graph_front_end(tally, data):
    _compile_case(tally, "m.yaml", mutate_yaml(GRAPH_YAML, data).encode())


@FUZZ
@given(data=st.data())
def test_fuzz_dynamics_front_end(tally, data):
    _compile_case(tally, "d.yaml", mutate_yaml(DYNAMICS_YAML, data).encode())


COMPILE_OPTIONS = ["--tile", "--weight-bits", "--adc-bits", "--dac-bits", "--seed", "--max-tiles", "--wire-r",
                   "--input-range", "--corner", "--weight-scale", "--pdk"]


@FUZZ
@given(data=st.data())
def test_fuzz_compile_options(tally, data):
    d = _case_dir()
    try:
        (d / "m.onnx").write_bytes(dense_model().SerializeToString())
        argv = ["compile", str(d / "m.onnx"), "-o", str(d / OUTPUT)]
        for opt in data.draw(st.lists(st.sampled_from(COMPILE_OPTIONS), min_size=1, max_size=3, unique=True)):
            n = 2 if opt == "--input-range" else 1
            argv += [opt, *[data.draw(st.sampled_from(OPTION_VALUES + ["ss", "layer", "sky130_1t1r", "/"]))
                            for _ in range(n)]]
            if opt == "--wire-r":
                argv.append("--parasitics")
        tally(argv, d, {"m.onnx"})
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def small_design(tmp_path_factory):
    """A compiled dense model and inputs for it (compiled in a subprocess: the parent stays fork-clean)."""
    root = tmp_path_factory.mktemp("fuzzdesign")
    (root / "m.onnx").write_bytes(dense_model().SerializeToString())
    r = amsc("compile", root / "m.onnx", "-o", root / "design")
    assert r.returncode == 0, r.stderr
    np.save(root / "x.npy", np.random.default_rng(0).uniform(0, 1, (6, 16)).astype(np.float32))
    np.save(root / "y.npy", np.array([0, 1, 2, 3, 0, 1]))
    return root


VERIFY_OPTIONS = ["--vectors", "--seed", "--tolerance-lsb", "--timeout", "--sample", "--jobs"]
EVALUATE_OPTIONS = ["--samples", "--mc", "--sigma", "--seed", "--read-time"]


@FUZZ
@given(data=st.data())
def test_fuzz_verify_and_evaluate_options(tally, small_design, data):
    d = _case_dir()
    try:
        shutil.copytree(small_design / "design", d / OUTPUT)
        cmd = data.draw(st.sampled_from(["verify", "evaluate"]), label="command")
        argv = [cmd, str(d / OUTPUT)] + (["--engine", "mna"] if cmd == "verify" else
                                         ["--inputs", str(small_design / "x.npy"), "--labels",
                                          str(small_design / "y.npy")])
        for opt in data.draw(st.lists(st.sampled_from(VERIFY_OPTIONS if cmd == "verify" else EVALUATE_OPTIONS),
                                      min_size=1, max_size=3, unique=True)):
            argv += [opt, data.draw(st.sampled_from(OPTION_VALUES))]
        tally(argv, d, set(), codes=(0, 1, 2) if cmd == "verify" else (0, 2))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_harness_catches_tracebacks_hangs_and_leftovers(tmp_path, monkeypatch):
    """The harness fails what it must: a traceback, a hang, a multi-line error and a leftover file."""
    import time as _time

    from compiler import cli
    from fuzz import harness

    def crash(argv):
        raise ZeroDivisionError("boom")
    monkeypatch.setattr(cli, "main", crash)          # the forked child inherits the patch
    assert "ZeroDivisionError" in check_case(["compile", "x"], tmp_path, set())

    def hang(argv):
        _time.sleep(60)
    monkeypatch.setattr(cli, "main", hang)
    monkeypatch.setattr(harness, "TIMEOUT_S", 2.0)
    code, _ = harness.run_case(["compile"], timeout=2.0)
    assert code == "hang"

    def chatty(argv):
        import sys
        print("error: one\nerror: two", file=sys.stderr)
        return 2
    monkeypatch.setattr(cli, "main", chatty)
    assert "without one 'error:' line" in check_case(["compile", "x"], tmp_path, set())

    def litter(argv):
        import sys
        (tmp_path / ".o.tmp-123").mkdir()
        print("error: x: refused", file=sys.stderr)
        return 2
    monkeypatch.setattr(cli, "main", litter)
    assert "left behind" in (check_case(["compile", "x"], tmp_path, set()) or "")

    def hog(argv):
        return len(bytearray(8 << 30))               # 8 GiB: beyond the case's address-space limit
    monkeypatch.setattr(cli, "main", hog)
    code, err = harness.run_case(["compile"])
    assert code == 97 and "MemoryError" in err


def test_onnx_mutations_reach_the_lowering():
    """Not every mutated model dies in the protobuf parser or the checker: some lower, some compile."""
    from hypothesis import find

    from compiler.errors import AmscError
    from compiler.frontend.onnx import onnx_to_ir

    def lowers(raw: bytes) -> bool:
        try:
            onnx_to_ir(raw, Path("m.onnx"))
        except AmscError:
            return False
        return raw != dense_model().SerializeToString()

    @st.composite
    def mutated(draw):
        return mutate_onnx(dense_model(), _Draw(draw))

    find(mutated(), lowers, settings=settings(database=None, derandomize=True, max_examples=300,
                                               suppress_health_check=list(HealthCheck)))


class _Draw:
    """``data.draw`` for a composite strategy's ``draw``."""

    def __init__(self, draw):
        self.draw = lambda strategy, label=None: draw(strategy)
