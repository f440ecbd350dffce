"""RTL tests: verilator lint, yosys synthesis, and an iverilog simulation of the sequencing
controller and tile wrappers with behavioural stand-ins for the analog macros."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import require_tool

TOP = "mlp_digits_top"


def _files(out):
    return [str(out / "rtl" / f) for f in (out / "rtl" / "files.f").read_text().split()]


def test_verilator_lint_wall_clean(mlp_out):
    require_tool("verilator")
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", TOP, *_files(mlp_out)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr


def test_yosys_synthesizes_digital_part(mlp_out):
    require_tool("yosys")
    script = f"read_verilog {' '.join(_files(mlp_out))}; synth -top {TOP}; stat"
    r = subprocess.run(["yosys", "-q", "-p", script, "-l", "/dev/stdout"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r"Number of cells:\s+[1-9]", r.stdout), r.stdout[-2000:]


def _behavioural_macro(t: dict, dac_bits: int, adc_bits: int, latency: int) -> str:
    rows, cols = t["rows"][1] - t["rows"][0], t["cols"][1] - t["cols"][0]
    # adc channel j = (sum of DAC codes + 37 j) mod 2^adc_bits, after `latency` cycles
    return f"""
module mlp_digits_xbar_{t['name']} (input wire clk, input wire conv_start,
    input wire [{rows * dac_bits - 1}:0] dac_code, output reg [{cols * adc_bits - 1}:0] adc_code,
    output reg conv_done);
    integer i, j, sum, cnt;
    initial begin conv_done = 1'b0; adc_code = 0; cnt = -1; end
    always @(posedge clk) begin
        if (conv_start) begin
            $display("START {t['name']} %0t", $time);
            conv_done <= 1'b0; cnt <= {latency};
            sum = 0;
            for (i = 0; i < {rows}; i = i + 1) sum = sum + dac_code[i*{dac_bits} +: {dac_bits}];
            for (j = 0; j < {cols}; j = j + 1) adc_code[j*{adc_bits} +: {adc_bits}] <= (sum + 37*j) % {2 ** adc_bits};
        end else if (cnt > 0) cnt <= cnt - 1;
        else if (cnt == 0) begin conv_done <= 1'b1; cnt <= -1; $display("DONE {t['name']} %0t", $time); end
    end
endmodule
"""


def test_controller_sequences_tiles_and_wrappers_latch_results(mlp_out, tmp_path):
    require_tool("iverilog", "vvp")
    man = json.loads((mlp_out / "manifest.json").read_text())
    dac_bits, adc_bits = man["pdk"]["dac_bits"], man["pdk"]["adc_bits"]
    tiles = sorted(man["tiles"], key=lambda t: t["name"])
    models = "".join(_behavioural_macro(t, dac_bits, adc_bits, 2 + 3 * k) for k, t in enumerate(tiles))
    (tmp_path / "macros.v").write_text(models)
    ports, drive, checks = [], [], []
    for k, t in enumerate(tiles):
        rows, cols = t["rows"][1] - t["rows"][0], t["cols"][1] - t["cols"][0]
        n = t["name"]
        ports.append(f"    reg [{rows * dac_bits - 1}:0] {n}_dac; wire [{cols * adc_bits - 1}:0] {n}_adc;")
        codes = [(7 * i + 11 * k) % 2 ** dac_bits for i in range(rows)]
        for i, c in enumerate(codes):
            drive.append(f"        {n}_dac[{i * dac_bits} +: {dac_bits}] = {c};")
        for j in range(cols):
            want = (sum(codes) + 37 * j) % 2 ** adc_bits
            checks.append(f"        if ({n}_adc[{j * adc_bits} +: {adc_bits}] !== {want}) begin "
                          f"$display(\"MISMATCH {n} {j}\"); errors = errors + 1; end")
    conns = ",\n".join(f"        .{t['name']}_dac_in({t['name']}_dac), .{t['name']}_adc_out({t['name']}_adc)"
                       for t in tiles)
    tb = f"""`timescale 1ns/1ps
module tb;
    reg clk = 0, rst_n = 0, start = 0; wire busy, done; integer errors = 0, cycles = 0;
{chr(10).join(ports)}
    always #5 clk = ~clk;
    {TOP} dut (.clk(clk), .rst_n(rst_n), .start(start), .busy(busy), .done(done),
{conns});
    initial begin
{chr(10).join(drive)}
        #22 rst_n = 1;
        @(posedge clk) start <= 1; @(posedge clk) start <= 0;
        while (!done && cycles < 1000) begin @(posedge clk); cycles = cycles + 1; end
        if (!done) begin $display("TIMEOUT"); errors = errors + 1; end
        @(posedge clk);
        if (busy) begin $display("BUSY_AFTER_DONE"); errors = errors + 1; end
{chr(10).join(checks)}
        $display("FINISHED errors=%0d cycles=%0d", errors, cycles);
        $finish;
    end
endmodule
"""
    (tmp_path / "tb.v").write_text(tb)
    rtl = [f for f in _files(mlp_out) if "_xbar_" not in f]
    subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "sim"), str(tmp_path / "tb.v"),
                    str(tmp_path / "macros.v"), *rtl], check=True, capture_output=True, text=True)
    r = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], capture_output=True, text=True, timeout=120)
    assert "FINISHED errors=0" in r.stdout, r.stdout
    events = [(int(t), kind, name) for kind, name, t in re.findall(r"^(START|DONE) (\S+) (\d+)$", r.stdout, re.M)]
    starts = {n: t for t, k, n in events if k == "START"}
    dones = {n: t for t, k, n in events if k == "DONE"}
    assert set(starts) == set(dones) == {t["name"] for t in tiles}
    by_step = {}
    for t in tiles:
        by_step.setdefault(t["step"], []).append(t["name"])
    for s in sorted(by_step):
        assert len({starts[n] for n in by_step[s]}) == 1, "tiles of one step start together"
        if s + 1 in by_step:
            assert min(starts[n] for n in by_step[s + 1]) > max(dones[n] for n in by_step[s])
