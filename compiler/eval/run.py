"""amsc run: the whole compiled network on inputs, chip segments and host segments together.

The design is read back from its output folder alone: ``ir.json`` gives the lowered graph, the
arrays come from ``tiles/``, ``layers/`` and ``params/`` (each checked against the sha256 that
``ir.json`` records), host segments from ``host/<segment>.onnx`` (run by onnxruntime), and the
chip's integer program from ``rtl/program.json`` when the datapath was generated.

Chip model, by what the design has:
- **Integer datapath** (``rtl_datapath.generated``): the chip is ``qmodel.run_program``, the numpy
  model that the RTL matches bit for bit. Its host steps (every host segment, before, between and
  after chip segments) run their ONNX files in onnxruntime on what the chip sent, dequantized with
  each stream's scale, and what the chip receives back is coded as the host link codes it.
- **No integer datapath** (a design the datapath generator cannot express): the segments run
  in order; chip segments compute in floating point with the quantized conductances (the IR
  interpreter), host segments run their ONNX files in onnxruntime.

Engines for the crossbar reads: ``ideal`` (the conductance arithmetic), ``mna`` (a sparse solve of
every tile's emitted netlist) and ``ngspice`` (the same testbench decks in ngspice). A circuit engine
drives the tile's word lines with the DAC voltages of its inputs and reads the TIA outputs; the
integer datapath then converts the currents with its ADC rule.

The float reference is the source model in onnxruntime (``source/<model>.onnx``, copied into the
design at compile time). The report gives top-1 agreement (for a class-vector output) and the
output SNR in dB, ``10 log10(sum ref^2 / sum (out - ref)^2)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..design import MANIFEST, confined, load_ir
from ..errors import InputError
from ..frontend.common import load_samples
from ..ir.interp import eval_node
from ..sim.netlist import read_deck

ENGINES = ("ideal", "mna", "ngspice")
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
#: vectors per circuit simulation call (one DC sweep point each)
CHUNK = 256


#: sessions of the design's model files, by file identity (a host segment runs once per batch and step)
_SESSIONS: dict = {}


def _session(path: Path, what: str = "host segment"):
    """An onnxruntime session of a model file in the design (a host segment, or the source with
    its external data files beside it, each confined to the source's folder first)."""
    import onnx

    from ..frontend.onnx import check_external_data
    from ..ir.host import session_file

    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in _SESSIONS:
            model = onnx.load(str(path), load_external_data=False)
            check_external_data(model, path)
            del model
            if len(_SESSIONS) >= 64:
                _SESSIONS.clear()
            _SESSIONS[key] = session_file(str(path))
        return _SESSIONS[key]
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SessionError(path, f"onnxruntime cannot load this {what}: {first}") from None


class SessionError(InputError):
    """onnxruntime refuses a model file of the design."""


def _batch_axes(sess) -> dict[str, int | None]:
    """Where each input/output of a host segment file has its symbolic batch dimension (None: the
    value has no batch axis, a per-sample result of a model defined at batch 1)."""
    axes = {}
    for v in list(sess.get_inputs()) + list(sess.get_outputs()):
        sym = [k for k, d in enumerate(v.shape) if not isinstance(d, int)]
        axes[v.name] = sym[0] if sym else None
    return axes


def run_host_segment(out: Path, seg: dict, vals: dict) -> None:
    """Run one host segment file in onnxruntime; its outputs go into ``vals`` (batch first)."""
    sess = _session(confined(out, seg["file"], out / MANIFEST, f"host segment {seg.get('name')!r}"))
    axes = _batch_axes(sess)
    if seg.get("per_sample") or any(axes[v] is None for v in [*seg["inputs"], *seg["outputs"]]):
        # a segment of a model defined at batch 1 only: one sample at a time
        from ..ir.host import per_sample_feed

        n = vals[seg["inputs"][0]].shape[0]
        runs = [_run_segment(out, seg, sess, {v: per_sample_feed(vals[v], i, axes[v]) for v in seg["inputs"]})
                for i in range(n)]
        for k, name in enumerate(seg["outputs"]):
            vals[name] = np.stack([y[k] if axes[name] is None else np.moveaxis(y[k], axes[name], 0)[0] for y in runs])
        return
    feeds = {v: np.moveaxis(vals[v], 0, axes[v]) for v in seg["inputs"]}
    got = _run_segment(out, seg, sess, feeds)
    for name, y in zip(seg["outputs"], got):
        vals[name] = np.moveaxis(y, axes[name], 0)


def _run_segment(out: Path, seg: dict, sess, feeds: dict) -> list[np.ndarray]:
    try:
        got = sess.run(seg["outputs"], {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()})
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(out / seg["file"], f"onnxruntime failed on this host segment: {first}") from None
    return [np.asarray(y, dtype=np.float64) for y in got]


class HostSide:
    """The host's half of a program with host segments (``qmodel.run_program``'s ``host``): the
    values it holds (batch first), and each ``host`` step run from its segment file in onnxruntime."""

    def __init__(self, out: Path, values: dict):
        self.out, self.values = out, values

    def __call__(self, step: dict) -> None:
        run_host_segment(self.out, step, self.values)


class CircuitTiles:
    """Column currents of tiles from their emitted netlists (engine ``mna`` or ``ngspice``).

    A linear (1R) tile asked for more vectors than it has word lines + 1 is measured once, by its
    transfer (rows + 1 operating points, as ``verify`` signs it off), and every later read follows
    by superposition; a 1T1R tile is nonlinear and is solved once per vector."""

    def __init__(self, out: Path, manifest: dict, engine_name: str):
        from ..verify.run import engine

        self.out, self.eng = out, engine(engine_name)
        self.tiles = {t["name"]: t for t in manifest["tiles"]}
        self.decks: dict[str, str] = {}
        self.transfers: dict[str, tuple] = {}
        self.v_read = manifest["pdk"]["v_read"]

    def currents(self, name: str, volts: np.ndarray) -> np.ndarray:
        from ..verify.run import measure_transfer, superpose

        t = self.tiles[name]
        if name not in self.decks:
            self.decks[name] = read_deck(self.out / t["testbench"])
        rows, cols = t["rows"][1] - t["rows"][0], t["cols"][1] - t["cols"][0]
        z = t["tia"]["transimpedance_ohm"]
        if t["cell"]["type"] == "1r" and (name in self.transfers or volts.shape[0] > rows + 1):
            if name not in self.transfers:
                self.transfers[name] = measure_transfer(self.eng, self.decks[name], t["testbench"], rows, cols,
                                                        self.v_read)
            return -superpose(self.transfers[name], volts) / z   # TIA: out = -Z * I
        res = []
        for lo in range(0, volts.shape[0], CHUNK):
            v = self.eng.sweep(self.decks[name], t["testbench"], [f"VIN_{i}" for i in range(rows)],
                               volts[lo:lo + CHUNK], [f"out_{j}" for j in range(cols)])
            res.append(-np.asarray(v) / z)
        return np.concatenate(res) if res else np.zeros((0, cols))


class Design:
    def __init__(self, out: str | Path, command: str = "run"):
        from ..design import load_compiled, require_network

        self.out = Path(out)
        self.manifest = load_compiled(self.out)
        require_network(self.out, self.manifest, command)
        if "partition" not in self.manifest:
            raise InputError(self.out / "manifest.json", "has no partition; recompile with this amsc version")
        self.ir = load_ir(self.out)
        self.segments = self.ir.g.graph["partition"]["segments"]
        self.prog = None
        if self.manifest["rtl_datapath"]["generated"]:
            from ..backend.qmodel import load_program

            self.prog = load_program(self.out)
        (self.input,) = self.ir.nodes_of("input")
        self.outputs = self.ir.nodes_of("output")
        self.reference_note = "not computed"   # what float_reference ran, or why it could not

    @property
    def input_shape(self) -> tuple:
        return tuple(self.ir.g.nodes[self.input]["shape"])

    def load_inputs(self, path) -> np.ndarray:
        return load_samples(path, self.input_shape, "inputs", flat_ok=True)

    def chip_model(self) -> str:
        if self.prog is not None and "chip" in self.manifest:
            return ("integer datapath (rtl/program.json) reading the tiles at this chip's conductances "
                    f"({self.manifest['chip']['file']}: stuck cells and programmed levels; the RTL reads their levels)")
        if self.prog is not None:
            return "integer datapath (rtl/program.json, bit-exact with the RTL)"
        return ("floating point with the quantized conductances (no integer datapath: "
                f"{self.manifest['rtl_datapath']['reason']})")

    def run(self, x: np.ndarray, engine: str = "ideal", conductances: dict | None = None,
            trace: dict | None = None, read_noise: tuple | None = None, observe=None,
            column_cal: dict | None = None) -> list[np.ndarray]:
        """Batch-first outputs of the compiled network on batch-first inputs ``x``. With the ideal
        engine, ``conductances`` ``{tile: (G+, G-)}`` replaces tiles' programmed conductances (a
        Monte-Carlo chip), and ``read_noise`` ``(sigma, rng)`` adds to every read the current noise of
        cells whose conductance fluctuates by a relative ``sigma`` per read. ``trace`` receives each
        layer's output: ``{layer: (value, code step)}`` (the step is None without the integer datapath).
        ``observe(tile, x)``, if given, sees every tile read's inputs ``x`` [vectors, rows] (DAC codes
        with the integer datapath, activations without it). ``column_cal`` ``{tile: (scale, offset, add)}``
        corrects the reads of ``conductances`` per column, ``(read - offset) * scale + add`` (a calibrated chip)."""
        if engine not in ENGINES:
            raise InputError("--engine", f"unknown engine '{engine}'; expected one of {', '.join(ENGINES)}")
        circuit = CircuitTiles(self.out, self.manifest, engine) if engine != "ideal" else None
        if engine == "ideal" and not conductances and "chip" in self.manifest:
            # a design for one chip: its tiles read at that chip's conductances (stuck cells included)
            conductances = {t: (self.ir.g.nodes[t]["params"]["gpos"], self.ir.g.nodes[t]["params"]["gneg"])
                            for t in self.ir.nodes_of("xbar_tile")}
        if self.prog is not None:
            return self._run_program(x, circuit, conductances or {}, trace, read_noise, observe, column_cal)
        return self._run_segments(x, circuit, conductances or {}, trace, read_noise, observe, column_cal)

    def _chip_read(self, name: str, xs, conductances: dict, read_noise, column_cal) -> np.ndarray:
        """A read of a drawn chip's tile: ``xs @ (G+ - G-)`` with read noise, corrected per column."""
        gp, gn = conductances[name]
        y = self._read(xs, gp, gn, read_noise)
        if column_cal and name in column_cal:
            scale, off, add = column_cal[name]
            y = (y - off) * scale + add
        return y

    def manifest_tile(self, name: str) -> dict:
        if not hasattr(self, "_tiles"):
            self._tiles = {t["name"]: t for t in self.manifest["tiles"]}
        return self._tiles[name]

    def read_unit(self, tile: str) -> float:
        """What one unit of a tile read's input is in the float IR's units: its layer's input map
        scale (activation per DAC code) with the integer datapath, 1 without it; a recurrent layer's
        recurrent rows read its own hidden state (its output map's scale)."""
        if self.prog is None:
            return 1.0
        t = self.manifest_tile(tile)
        st = next(st for st in self.prog["steps"] if st.get("kind") == "layer" and st["name"] == t["layer"])
        if st.get("recur") and t["rows"][0] >= st["recur"]["inputs"]:
            return st["dst"]["scale"]
        return st["src"]["scale"]

    def _observed(self, tile_fn, observe, default):
        """``tile_fn`` (or ``default``, the engine's own read) with ``observe`` shown each read's inputs."""
        if observe is None:
            return tile_fn
        inner = tile_fn or default

        def fn(name, xs):
            observe(name, xs)
            return inner(name, xs)
        return fn

    @staticmethod
    def _read(xs: np.ndarray, gp: np.ndarray, gn: np.ndarray, read_noise) -> np.ndarray:
        """``xs @ (G+ - G-)``, plus read noise: each output's variance is sum_i x_i^2 sigma^2 (G+^2 + G-^2)."""
        y = xs @ (gp - gn)
        if read_noise is not None:
            sig, rng = read_noise
            y = y + np.sqrt((xs ** 2) @ (sig ** 2 * (gp ** 2 + gn ** 2))) * rng.standard_normal(y.shape)
        return y

    def _run_program(self, x, circuit, conductances: dict, trace, read_noise=None, observe=None,
                     column_cal=None) -> list[np.ndarray]:
        from ..backend.qmodel import input_codes, run_program

        prog = self.prog
        tile_fn = None
        pdk = self.manifest["pdk"]
        dmax = 2 ** prog["dac_bits"] - 1
        g_step = (pdk["g_max"] - pdk["g_min"]) / (pdk["levels"] - 1)
        if circuit is not None:
            unit = pdk["v_read"] * g_step / dmax          # column current of one level step at one code

            def tile_fn(name, codes):
                return circuit.currents(name, codes * (pdk["v_read"] / dmax)) / unit
        elif conductances:
            def tile_fn(name, codes):   # in level steps
                return self._chip_read(name, codes.astype(np.float64), conductances, read_noise, column_cal) / g_step

        def levels(name, codes):    # the integer rule's level sum
            p = self.ir.g.nodes[name]["params"]
            return codes.astype(np.int64) @ (p["lpos"].astype(np.int64) - p["lneg"])

        tile_fn = self._observed(tile_fn, observe, levels)
        host = HostSide(self.out, {self.input: np.asarray(x, dtype=np.float64)})
        codes_trace = {} if trace is not None else None
        run_program(prog, input_codes(prog, x), tile_fn, host, trace=codes_trace)   # host segments are steps too
        if trace is not None:
            trace.update({k: (c * sc, sc) for k, (c, sc) in codes_trace.items()})
        return [host.values[self.ir.inputs(o)[0]] for o in self.outputs]

    def _run_segments(self, x, circuit, conductances: dict | None = None, trace=None,
                      read_noise=None, observe=None, column_cal=None) -> list[np.ndarray]:
        ir = self.ir
        vals = {self.input: np.asarray(x, dtype=np.float64)}
        tile_fn = None
        if circuit is not None:
            v_read = self.manifest["pdk"]["v_read"]

            def tile_fn(name, xs):
                # the activations as word-line voltages: full scale of this read -> V_read
                flat = xs.reshape(-1, xs.shape[-1])
                m = float(np.max(np.abs(flat))) or 1.0
                i = circuit.currents(name, flat * (v_read / m))
                return (i * (m / v_read)).reshape(xs.shape[:-1] + (-1,))
        elif conductances:
            def tile_fn(name, xs):
                return self._chip_read(name, xs, conductances, read_noise, column_cal)

        def programmed(name, xs):
            p = ir.g.nodes[name]["params"]
            return xs @ (p["gpos"] - p["gneg"])

        tile_fn = self._observed(tile_fn, observe, programmed)
        for seg in self.segments:
            if seg["kind"] == "host":
                run_host_segment(self.out, seg, vals)
                continue
            for n in seg["nodes"]:
                vals[n] = eval_node(ir, n, [vals[i] for i in ir.inputs(n)], tile_fn)
                if trace is not None and ir.g.nodes[n]["op"] == "accum":
                    trace[n] = (vals[n], None)
            for v in list(vals):            # free what no later node reads
                if v != self.input and all(c in vals for c in ir.consumers(v)):
                    del vals[v]
        return [vals[ir.inputs(o)[0]] for o in self.outputs]

    def float_reference(self, x: np.ndarray) -> list[np.ndarray] | None:
        """The source model's outputs in onnxruntime (batch first), or None (``reference_note`` says
        why: a YAML source, or a source onnxruntime cannot load, such as an old export whose
        operators amsc folds at compile time and onnxruntime no longer knows)."""
        src = self.manifest["source"].get("file")
        if src is None:
            self.reference_note = "none (the design holds no ONNX source: a YAML graph, or compiled by an older amsc)"
            return None
        try:
            sess = _session(self.out / src, "source model")
        except SessionError as e:
            self.reference_note = f"none ({e.what})"
            return None
        self.reference_note = f"onnxruntime on {src}"
        name = self.ir.g.nodes[self.input]["origin"]
        axis = self.ir.g.nodes[self.input]["attrs"]["batch_axis"]
        spec = {i.name: i for i in sess.get_inputs()}
        fixed = spec[name].shape[axis] if axis is not None else 1
        # a model exported with a fixed batch (1, as torch.onnx.export writes it, or 64) runs in
        # chunks of that many rows, the last one padded with zeros; a symbolic batch runs whole
        step = fixed if isinstance(fixed, int) and fixed > 0 else x.shape[0]
        x = np.asarray(x, np.float32)
        # declared inputs that no node reads: zeros, the same for every chunk
        unused = {other: np.zeros([d if isinstance(d, int) and d > 0 else step for d in v.shape],
                                  _ORT_DTYPES.get(v.type, np.float32)) for other, v in spec.items() if other != name}
        chunks = []
        for lo in range(0, x.shape[0], step):
            part = x[lo:lo + step]
            rows = part.shape[0]
            if rows < step:
                part = np.concatenate([part, np.zeros((step - rows, *part.shape[1:]), np.float32)])
            feed = part if axis is not None else part[0]
            if axis not in (None, 0):
                feed = np.moveaxis(feed, 0, axis)
            got = sess.run(None, {name: feed, **unused})
            out = []
            for o, y in zip(self.outputs, got):
                ax = self.ir.g.nodes[o]["attrs"]["batch_axis"]
                y = np.asarray(y, np.float64)[None] if ax is None else np.moveaxis(np.asarray(y, np.float64), ax, 0)
                out.append(y[:rows])
            chunks.append(out)
        return [np.concatenate([c[k] for c in chunks]) for k in range(len(self.outputs))]


def agreement(out: np.ndarray, ref: np.ndarray) -> dict:
    """Top-1 agreement (for [N, classes] outputs) and SNR in dB of ``out`` against ``ref``."""
    out, ref = np.asarray(out, float), np.asarray(ref, float)
    noise = float(np.sum((out - ref) ** 2))
    signal = float(np.sum(ref ** 2))
    rep = {"snr_db": float("inf") if noise == 0 else (10 * np.log10(signal / noise) if signal > 0 else float("-inf")),
           "max_abs_err": float(np.max(np.abs(out - ref))) if out.size else 0.0}
    flat_o, flat_r = out.reshape(out.shape[0], -1), ref.reshape(ref.shape[0], -1)
    if flat_r.shape[1] > 1:
        rep["top1_agreement"] = float(np.mean(flat_o.argmax(1) == flat_r.argmax(1)))
    return rep


def run_design(out: str | Path, inputs: str | Path, engine: str = "ideal", dest: str | Path | None = None,
               limit: int | None = None) -> dict:
    """``amsc run``: outputs of the compiled network (written to ``dest`` as .npy) and a report."""
    import time

    t0 = time.perf_counter()
    design = Design(out)
    x = design.load_inputs(inputs)
    if limit is not None:
        x = x[:limit]
    ys = design.run(x, engine)
    ref = design.float_reference(x)
    report = {"design": design.manifest["design"], "engine": engine, "chip_model": design.chip_model(),
              "samples": int(x.shape[0]), "segments": [s["name"] + ":" + s["kind"] for s in design.segments],
              "outputs": []}
    for k, y in enumerate(ys):
        entry = {"shape": list(y.shape[1:])}
        if ref is not None:
            entry.update(agreement(y, ref[k]))
        report["outputs"].append(entry)
    report["float_reference"] = design.reference_note
    if dest is not None:
        dest = Path(dest)
        try:
            if len(ys) == 1:
                np.save(dest, ys[0].astype(np.float32), allow_pickle=False)
            else:
                np.savez(dest, *[y.astype(np.float32) for y in ys])
        except OSError as e:
            raise InputError(dest, f"cannot write outputs: {e.strerror}") from None
        report["written"] = str(dest)
    report["seconds"] = time.perf_counter() - t0
    return report
