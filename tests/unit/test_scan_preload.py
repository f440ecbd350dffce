"""The scan chain's preload files hold what shifting the whole stream through the chain leaves in
each register: checked against a bit-level model of the chain (shift registers in series), and on a
real program's stream."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.backend.verilog import preload_files, scan_registers


def shift_chain(stream: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Every register after shifting ``stream`` (first bit first) into a chain of shift registers of
    ``sizes`` bits (chain order), each ``reg <= {in, reg[N-1:1]}``, out = reg[0]."""
    regs = [np.zeros(n, np.uint8) for n in sizes]
    for bit in stream:
        carry = bit
        for r in regs:
            out = r[0]
            r[:-1] = r[1:]
            r[-1] = carry
            carry = out
    return regs


def parse(name: str, text: bytes) -> np.ndarray:
    """A preload file as the register's bits, bit 0 first ($readmemb of the ring, or of one word)."""
    if name.startswith("preload_t"):
        return np.array(text.split(), dtype=np.uint8)
    word = text.strip().decode()
    return np.array([int(c) for c in reversed(word)], dtype=np.uint8)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=5), st.integers(0, 3), st.integers(0, 2 ** 31 - 1))
def test_preload_is_what_the_chain_leaves(tile_bits, n_cal, seed):
    rng = np.random.default_rng(seed)
    regs = [(f"preload_t{k}.mem", b) for k, b in enumerate(tile_bits)] + \
        [(f"preload_c{n}.mem", int(rng.integers(1, 9))) for n in range(n_cal)]
    stream = rng.integers(0, 2, sum(b for _, b in regs)).astype(np.uint8)
    want = shift_chain(stream, [b for _, b in regs])
    got = dict(preload_files(stream, regs))
    assert list(got) == [name for name, _ in regs]
    for (name, _), w in zip(regs, want):
        np.testing.assert_array_equal(parse(name, got[name]), w, err_msg=name)


def test_registers_of_a_program_and_a_wrong_stream():
    """scan_registers sizes each tile's macro by its physical cells and level bits and its routing
    register by its word lines' row selects and its columns' pair selects, then the requantizer
    registers; a stream of another length is refused."""
    prog = {"level_bits": 3, "steps": [
        {"kind": "layer", "name": "fc1", "cols": 4, "mq_bits": 5, "bq_bits": 6, "tiles": [
            {"name": "t0", "row0": 0, "row1": 2, "col0": 0, "col1": 4, "prows": 4, "pcols": 8}]},
        {"kind": "layer", "name": "fc2", "cols": 2, "mq_bits": 4, "bq_bits": 4, "recur": None, "tiles": [
            {"name": "t1", "row0": 0, "row1": 4, "col0": 0, "col1": 2, "prows": 4, "pcols": 2}]}]}
    regs = scan_registers(prog, ["t1", "t0"])
    # t1: 4 x 2 cells, a 2-bit word line (0-3) per input row and a 1-bit pair
    # (0-1) per column; t0: a 4 x 8 array for 2 x 4 weights, 2-bit word lines and 3-bit pairs (0-7)
    assert regs == [("preload_t0.mem", 4 * 2 * 2 * 3), ("preload_r0.mem", 4 * 2 + 2 * 1),
                    ("preload_t1.mem", 4 * 8 * 2 * 3), ("preload_r1.mem", 2 * 2 + 4 * 3),
                    ("preload_c0.mem", 4 * 11), ("preload_c1.mem", 2 * 8)]
    with pytest.raises(ValueError, match="scan stream of 5 bits"):
        list(preload_files(np.zeros(5, np.uint8), regs))
