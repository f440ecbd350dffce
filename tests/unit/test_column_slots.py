"""backend/verilog._column_slots: a layer's tiles in slots of tiles apart in columns, from which a
store lane adds one ADC code a slot for its column. Every column's partial sums must be its tiles'
codes, each once: a tile left out or counted twice would be a wrong sum in every chip."""

import numpy as np

from compiler.backend.verilog import _column_slots


def _tile(name, rows, cols):
    return {"name": name, "row0": rows[0], "row1": rows[1], "col0": cols[0], "col1": cols[1]}


def test_a_grid_of_tiles_is_its_row_bands():
    tiles = [_tile(f"r{r}c{c}", (64 * r, 64 * r + 64), (32 * c, 32 * c + 32)) for r in range(3) for c in range(2)]
    slots = _column_slots(tiles[::-1], 64, 8)     # the tiles' order does not matter
    assert len(slots) == 3
    for r, slot in enumerate(slots):
        assert slot[0] == f"adc_r{r}c0[7:0]" and slot[31] == f"adc_r{r}c0[255:248]"
        assert slot[32] == f"adc_r{r}c1[7:0]" and slot[63] == f"adc_r{r}c1[255:248]"


def test_ragged_row_splits_leave_a_slot_empty_where_a_column_has_fewer_tiles():
    # columns 0-31 in one tile of 100 rows, columns 32-63 in two tiles of 50 rows each
    tiles = [_tile("a", (0, 100), (0, 32)), _tile("b", (0, 50), (32, 64)), _tile("c", (50, 100), (32, 64))]
    slots = _column_slots(tiles, 64, 6)
    assert len(slots) == 2
    assert [s[10] for s in slots] == ["adc_a[65:60]", None]
    assert sorted(s[40] for s in slots) == ["adc_b[53:48]", "adc_c[53:48]"]


def test_every_tile_column_is_in_exactly_one_slot():
    rng = np.random.default_rng(0)
    for _ in range(50):
        cols = int(rng.integers(1, 40))
        tiles, k = [], 0
        for _ in range(int(rng.integers(1, 6))):     # row bands, each split in columns its own way
            cuts = sorted(set(rng.integers(1, cols, size=int(rng.integers(0, 4))).tolist()) | {0, cols}) if cols > 1 \
                else [0, 1]
            for c0, c1 in zip(cuts, cuts[1:]):
                tiles.append(_tile(f"t{k}", (8 * k, 8 * k + 8), (c0, c1)))
                k += 1
        slots = _column_slots(tiles, cols, 4)
        for j in range(cols):
            got = sorted(s[j].split("[")[0] for s in slots if s[j] is not None)
            assert got == sorted(f"adc_{t['name']}" for t in tiles if t["col0"] <= j < t["col1"])
