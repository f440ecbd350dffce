"""Continuous-time dynamics on the sky130_1t1r PDK: transistor activations, 1T1R crossbars and
op-amp integrators, characterized at compile time so that the golden model is the circuit's own.

Per state i (compiler/pdk_templates/sky130_1t1r/dynamics.sp.j2):

- **Integrator**: an op-amp (the PDK's macromodel: DC gain A0, GBW) with C_i and R in its feedback
  path. Its inverting input is state i's summing node, held near 0 V, where the G+ bit lines of its
  row tiles end; its output x_i is ``-a x`` (inverting). The G- bit lines end at a second op-amp TIA
  (feedback R_T), whose output drives R_T into the summing node: a current of -I_N. So the summing
  node collects I_P - I_N, and ``tau dx/dt = -x + (R / a)(I_P - I_N) + ...`` with ``tau = R C``.
- **Activation**, from the state node through ideal gain stages onto transistor gates, then an
  output gain stage and an op-amp follower (macromodel) on the word line:
  - tanh, and sigmoid as tanh(x / 2): a differential pair of sky130_fd_pr__nfet_01v8 (W/L =
    the PDK's ``analog.pair.w_um`` / ``l_um``), resistor loads (``r_load``) from the supply ``vdd`` and a
    tail mirrored from one ``i_tail`` reference (every number of the stages is in the PDK's ``analog``
    section of pdk.yaml). Its gates
    sit at ``vcm +- k_x x / 2``; ``k_x`` puts the slope of ``o = (V_d2 - V_d1) / (R_D I_T)`` at x = 0
    at 1, as tanh's; the word line is ``V_read (1 + o) / 2``.
  - relu: an nfet source follower into ``analog.follower.r_source``, its gate at ``v_b + k_x x``, with ``v_b`` where
    its linear range extrapolates to 0 V. Below threshold it clamps near 0 V. The largest activation
    s_max (with the margin) puts the gate at ``v_g_top`` and the word line at V_read; s_max comes from
    the model's trajectory, then from the characterized circuit's until it holds still (a network
    that keeps growing is refused).
- **Signed activations on a unipolar array**: the word line carries ``p = (1 + s) / 2``, so
  ``W s = 2 W p - W 1``. The scaling of R absorbs the factor 2, and a bias current per state
  cancels ``-W 1``. Sigmoid and relu are unipolar (``p = s / s_max``), so they need neither.

The golden model (:class:`Circuit`) replaces each ideal part by its characterization at the
compile's corner, written to ``arrays/char_*.npy``:
- the activation stage's transfer curve: one ngspice DC sweep of the stage and its follower;
- each level's 1T1R cell current over the word-line voltage, and its derivative against the bit
  line's voltage: one ngspice DC sweep of the crossbar's own device lines;
- the op-amps' finite gain, and the integrators' finite GBW to first order (Circuit's docstring).
  Leaving the GBW out costs up to 1.3e-2 of full scale on a random N = 8 network: the integrator's
  time constant 1 / (2 pi GBW) is 1e-4 of a model time unit at the automatic time scale.

The deck starts from the initial state with ``.ic`` on the op-amps, summing nodes and followers and
``.nodeset`` on every transistor node (:func:`ic_card`); it runs with reltol 1e-5, chgtol 1e-12 and
trtol 7 (the step capped at 1/1000 of the window), which every measured initial state passed, where
reltol 1e-6, the default chgtol or trtol 1 failed some on the first step. ``amsc verify`` checks ngspice against the golden model to TOLERANCE_FS, and also
reports how far the characterized circuit is from the model's own math (ideal activation, linear
weights): a few % of full scale for a contractive network, O(1) for one that amplifies differences.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, PdkError

#: sign-off tolerance of a sky130_1t1r dynamics design, in fractions of full scale (tested)
TOLERANCE_FS = 5e-3
ACTIVATIONS = ("tanh", "sigmoid", "relu")
ACT_POINTS = 961
CELL_POINTS = 401
#: the bit-line offset of the characterization's central difference dI / dV_bl (V)
DV_BL = 2e-3
C_MIN = 1e-12
#: the transient's largest step is the window over this
TRAN_POINTS = 1000
#: the activation stages' internal nodes (of state 0 in the characterization deck), set at t = 0 too
STAGE_NODES = {"pair": ("d1_0", "d2_0", "tl_0"), "follower": ("s_0",)}
#: at most this many references fix relu's s_max (prepare)
RELU_PASSES = 4


def analog(pdk) -> dict:
    """The PDK's analog stages (``analog`` in pdk.yaml): the supply, the differential pair, the
    source follower and the TIA swing; refused in one line if the PDK names none."""
    if pdk.analog is None:
        raise PdkError(pdk.name, "names no 'analog' section (supply, differential pair, source follower) for the "
                                 "transistor stages of continuous-time models")
    return pdk.analog


def check_model(model: dict, path) -> None:
    if model["form"] != "recurrent":
        raise InputError(path, "vector_field: sky130_1t1r builds recurrent models only (its hidden TIAs are not "
                               "built yet); compile a vector field on the generic PDK")
    if model["activation"] not in ACTIVATIONS:
        raise InputError(path, f"activation: {model['activation']!r} on sky130_1t1r; its transistor activations "
                               f"are {', '.join(ACTIVATIONS)} (generic has identity too)")


def fet_models(pdk) -> tuple[dict, dict]:
    """The cell's access transistor and the differential pair's transistor, each a flat model."""
    from ..pdk.devices import specialize_fet

    t = pdk.cell["transistor"]
    cell = specialize_fet(pdk.models, t["subckt"], t["w_um"], t["l_um"])
    pair = analog(pdk)["pair"]
    dp = specialize_fet(pdk.models, t["subckt"], pair["w_um"], pair["l_um"], prefix="amsc_dp")
    return cell, dp


def opamp_numbers(pdk) -> dict:
    """The PDK's op-amp macromodel (compiler.backend.spice.tia_context's): gm into R1 || C1, buffer."""
    from .spice import tia_context

    t = tia_context(1.0, pdk)
    return {k: t[k] for k in ("gm", "r1", "c1", "a0")}


def stage_kind(activation: str) -> str:
    """The transistor stage of an activation: a differential pair (tanh, sigmoid) or a source follower (relu)."""
    return "follower" if activation == "relu" else "pair"


def activation_stage(kind: str, k: str, src: str, gain: float, out: str, dp: dict, op: dict, k_o: float,
                     an: dict) -> list[str]:
    """One state's activation: ideal gain stages from node ``src`` onto the gates (``gain`` volts
    per volt), the transistor stage, the output gain stage ``k_o`` and the op-amp follower that
    drives word line ``out``. ``pair``: a differential pair with gates at vcm +- gain V(src) / 2,
    resistor loads and a mirrored tail; its output is vhalf + k_o (V(d2) - V(d1)). ``follower``: an
    nfet source follower into ``r_source``, gate at vbr + gain V(src), source clamped near 0 V below
    threshold; its output is k_o V(s). ``an``: the PDK's analog section."""
    from .render import spice_num

    fet = f"{dp['model']} {dp['attrs']}"
    g, k_o = spice_num(gain), spice_num(k_o)
    if kind == "pair":
        core = [f"EGP_{k} gp_{k} vcm {src} 0 {g}", f"EGN_{k} gn_{k} vcm {src} 0 {spice_num(-gain)}",
                f"MD1_{k} d1_{k} gp_{k} tl_{k} 0 {fet}", f"MD2_{k} d2_{k} gn_{k} tl_{k} 0 {fet}",
                f"MT_{k} tl_{k} vbt 0 0 {fet}", f"RD1_{k} vdd d1_{k} {an['pair']['r_load']!r}", f"RD2_{k} vdd d2_{k} {an['pair']['r_load']!r}",
                f"EO_{k} wo_{k} vhalf d2_{k} d1_{k} {k_o}"]
    else:
        core = [f"EGR_{k} gr_{k} vbr {src} 0 {g}", f"MF_{k} vdd gr_{k} s_{k} 0 {fet}",
                f"RS_{k} s_{k} 0 {an['follower']['r_source']!r}", f"EO_{k} wo_{k} 0 s_{k} 0 {k_o}"]
    return core + [f"GDR_{k} 0 odr_{k} wo_{k} {out} {op['gm']}", f"RDR_{k} odr_{k} 0 {op['r1']}",
                   f"CDR_{k} odr_{k} 0 {op['c1']}", f"EDR_{k} {out} 0 odr_{k} 0 1"]


def _supplies(pdk, dp: dict, kind: str, v_b: float = 0.0) -> list[str]:
    from .render import spice_num

    an = analog(pdk)
    if kind == "follower":      # the followers' gate bias
        return [f"VDD vdd 0 DC {an['vdd']!r}", f"VBR vbr 0 DC {spice_num(v_b)}"]
    # the tails' bias: i_tail into a diode-connected transistor, mirrored by every state's tail
    # (an ideal tail source leaves the tail node floating whenever Newton cuts both transistors off)
    return [f"VDD vdd 0 DC {an['vdd']!r}", f"VCMS vcm 0 DC {an['pair']['vcm']!r}",
            f"VHALF vhalf 0 DC {spice_num(pdk.v_read / 2)}",
            f"IBT vdd vbt DC {an['pair']['i_tail']!r}", f"MBT vbt vbt 0 0 {dp['model']} {dp['attrs']}"]


def cell_sweep(pdk, corner: str, cell_fet: dict, g: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each level's 1T1R cell current over word-line voltages ``v`` with its bit line at 0 V, its
    derivative against the bit line's voltage (the summing nodes sit at a x / A0, not 0 V) and the
    voltage of its mid node (between the RRAM and the transistor, for ``.nodeset``), from one ngspice
    DC sweep of the crossbar's own device lines (``device_block``): ``[levels, V]`` each. The
    bisection of compiler.pdk.devices.cell_currents against the calibrated transistor table differs
    from this by about 1e-4 of the current, which the dynamics would integrate."""
    from .spice import device_block
    from ..pdk.devices import model_cards
    from ..sim.ngspice import session

    row = g[None, :]
    lines = device_block(row, row, pdk, cell_fet, None, guard=True)
    amm = [f"VB{s}_{k} bl{s}_{k} bl DC 0" for k in range(g.size) for s in ("p", "n")]
    deck = "\n".join(["* amsc 1T1R cell characterization", *model_cards(pdk.models, corner), *cell_fet["cards"],
                      f"VSEL sel 0 DC {pdk.cell['v_gate']!r}", "VW wl_0 0 DC 0", "VBL bl 0 DC 0", lines, *amm,
                      ".op", ".end"]) + "\n"
    grid = np.array([[w, b] for b in (0.0, DV_BL, -DV_BL) for w in v])
    res = session().sweep(deck, "1T1R cell characterization", ["VW", "VBL"], grid,
                          [f"I(VBp_{k})" for k in range(g.size)] + [f"mp_0_{k}" for k in range(g.size)])
    res = res.reshape(3, v.size, 2, g.size).transpose(2, 0, 3, 1)     # [current | mid, bit line, levels, V]
    cur, mid = res
    return cur[0], (cur[1] - cur[2]) / (2 * DV_BL), mid[0]


def pair_k_o(pdk) -> float:
    """The differential pair's output gain: its full differential swing R_D I_T onto V_read / 2."""
    pair = analog(pdk)["pair"]
    return pdk.v_read / (2 * pair["r_load"] * pair["i_tail"])


def characterize(pdk, corner: str, kind: str = "pair") -> dict:
    """The activation stage's transfer curve and the cell currents of every level, from ngspice.
    ``pair``: ``o(dV)`` in [-1, 1] (the word line is V_read (1 + o) / 2) over the differential
    input. ``follower``: the word line over V_read, ``o(V_g - v_b)``, with ``v_b`` the gate voltage
    where the follower's linear range extrapolates to 0 V and its output gain putting ``v_g_top`` at
    V_read (``k_o`` and ``v_b`` in the returned dict)."""
    from ..pdk.devices import model_cards
    from ..sim.ngspice import session

    an = analog(pdk)
    cell_fet, dp = fet_models(pdk)
    op = opamp_numbers(pdk)
    k_o = pair_k_o(pdk) if kind == "pair" else 1.0
    deck = "\n".join(["* amsc activation-stage characterization", *model_cards(pdk.models, corner), *dp["cards"],
                      *_supplies(pdk, dp, kind), "VIN vin 0 DC 0",
                      *activation_stage(kind, "0", "vin", 0.5 if kind == "pair" else 1.0, "wl", dp, op, k_o, an),
                      "RLOAD wl 0 1e6", ".op", ".end"]) + "\n"
    f = an["follower"]
    dv = (np.linspace(-an["pair"]["dv_span"], an["pair"]["dv_span"], ACT_POINTS) if kind == "pair"
          else np.linspace(f["v_g_lo"], f["v_g_hi"], ACT_POINTS))
    nodes = session().sweep(deck, "activation characterization", ["VIN"], dv[:, None], ["wl", *STAGE_NODES[kind]])
    wl = nodes[:, 0]
    extra = {}
    if kind == "pair":
        o = (wl - pdk.v_read / 2) / (pdk.v_read / 2)
    else:
        top = (dv >= f["v_g_top"] - 0.4) & (dv <= f["v_g_top"])
        slope, icpt = np.polyfit(dv[top], nodes[top, 1], 1)
        v_b = -icpt / slope
        k_f = pdk.v_read / float(np.interp(f["v_g_top"], dv, wl))  # the output gain k_o
        o, dv = wl * k_f / pdk.v_read, dv - v_b
        extra = {"v_b": np.array(v_b), "k_o": np.array(k_f)}
    v = np.linspace(0.0, pdk.v_read, CELL_POINTS)
    g = pdk.g_min + np.arange(pdk.levels) * pdk.g_step
    cur, d_bl, vm = cell_sweep(pdk, corner, cell_fet, g, v)
    # the stage's node voltages and each level's mid-node voltage start the deck's .nodeset (ic_card)
    return {"dv": dv, "o": o, "v": v, "cell_i": cur, "cell_dbl": d_bl, "cell_vm": vm, "stage": nodes[:, 1:], **extra}


class Circuit:
    """The characterized circuit's right-hand side (module docstring), built from the arrays the
    compile writes (``arrays/char_*.npy``) and the manifest's numbers.

    The op-amps are the PDK's macromodel (DC gain A0, gain-bandwidth GBW), so no summing node is
    a perfect virtual ground (eps = 1 / A0, gamma = 1 / (2 pi GBW k_t), the op-amp's time constant in
    model time):
    - state i's integrator holds its summing node at ``a d_i``, ``d = eps x + gamma dx/dt``. Its G+
      cells see that much less voltage (each cell's ``dI / dV_bl`` from the characterization, to
      first order, summed over the column: D_P), the G- TIA's return resistor R_T draws ``a d / R_T``
      and the feedback R and C see ``a (x + d)``;
    - the G- TIA's input sits at ``R_T I_N / (1 + A0)``, which lowers I_N the same way, and the TIA
      returns ``I_N / (1 + eps)``. Its GBW, and the word-line followers', are left out: raising
      either tenfold in the deck changes the trajectory by under 3 % of what the integrator's does
      (measured on a random N = 8 model).
    KCL at the summing node, in state units (currents times R / a; ``tau = R C``):
    ``tau (1 + eps) x' + tau gamma x'' + gamma (1 + R / R_T - R D_P) x'
    = I_P - I_N / (1 + eps) - x (1 + eps) - x R eps / R_T + drive``.
    The ``x''`` term is taken from the equation without gamma (``x'' = J f0 + df0/dt``, an error
    of order gamma^2), so the model stays a first-order ODE that solve_ivp integrates explicitly.
    ``r_ohm``, ``r_tia``, ``v_bl_per_x`` (a eps) and ``gamma`` are 0 for the compile's first reference,
    before the amplitude and the time scale fix them."""

    def __init__(self, char: dict, q: np.ndarray, k_x: float, v_read: float, r_over_a: float, activation: str,
                 a0: float, r_ohm: float = 0.0, r_tia: float = 0.0, v_bl_per_x: float = 0.0, gamma: float = 0.0):
        from scipy.interpolate import CubicSpline

        self.o = CubicSpline(char["dv"], char["o"])
        self.do = self.o.derivative()
        self.cells = CubicSpline(char["v"], np.asarray(char["cell_i"]).T)     # V -> [levels]
        self.dcells = self.cells.derivative()
        self.d_bl = CubicSpline(char["v"], np.asarray(char["cell_dbl"]).T)    # V -> [levels], dI / dV_bl
        self.k_x = k_x * (0.5 if activation == "sigmoid" else 1.0)
        # the word line over V_read: (1 + o) / 2 from a differential pair, o itself from a follower
        self.kind = stage_kind(activation)
        self.char, self.q = char, q
        self.c0, self.c1 = (0.0, 1.0) if self.kind == "follower" else (0.5, 0.5)
        self.span = (float(char["dv"][0]), float(char["dv"][-1]))
        self.v_read, self.r_over_a = v_read, r_over_a
        self.eps = 1.0 / a0
        self.leak = r_ohm * self.eps / r_tia if r_tia else 0.0
        self.r_ratio = r_ohm / r_tia if r_tia else 0.0
        self.v_bl_per_x, self.r_tia, self.gamma, self.r_ohm = v_bl_per_x, r_tia, gamma, r_ohm
        lp, ln = np.maximum(q, 0), np.maximum(-q, 0)
        levels = np.asarray(char["cell_i"]).shape[0]
        self.DP = np.stack([(lp == k).astype(float) for k in range(levels)])
        self.DN = np.stack([(ln == k).astype(float) for k in range(levels)])

    def p(self, x: np.ndarray) -> np.ndarray:
        """A word line's voltage over V_read for state x."""
        return self.c0 + self.c1 * self.o(np.clip(self.k_x * x, *self.span))

    def _parts(self, x: np.ndarray):
        v_wl = self.v_read * self.p(x)
        ivals, dvals = self.cells(v_wl), self.d_bl(v_wl)                  # [N, levels]
        d_p = np.einsum("kij,jk->i", self.DP, dvals)                      # column sums of dI / dV_bl
        ip = np.einsum("kij,jk->i", self.DP, ivals) + self.v_bl_per_x * x * d_p
        i0 = np.einsum("kij,jk->i", self.DN, ivals)
        # I_N = I0 + V_bln dI/dV_bl, with V_bln = R_T I_N / (1 + A0)
        i_n = i0 / (1.0 - self.r_tia * self.eps / (1 + self.eps) * np.einsum("kij,jk->i", self.DN, dvals))
        return v_wl, self.r_over_a * ip, self.r_over_a * i_n, d_p

    def currents(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(R / a) I_P and (R / a) I_N for states x [N] (class docstring)."""
        _, ip, i_n, _ = self._parts(x)
        return ip, i_n

    def rhs(self, x: np.ndarray, drive: np.ndarray, tau: np.ndarray, drive_rate: np.ndarray | float = 0.0) -> np.ndarray:
        """dx/dt, with ``drive`` the biases and inputs in state units ((R / a) of their currents)
        and ``drive_rate`` its time derivative (the inputs' PWL slopes)."""
        v_wl, ip, i_n, d_p = self._parts(x)
        e = self.eps
        f0 = (-x * (1 + e) - x * self.leak + ip - i_n / (1 + e) + drive) / (tau * (1 + e))
        if not self.gamma:
            return f0
        # x'' of the equation without gamma: J f0 + (drive rate) / (tau (1 + e))
        u = self.k_x * x
        inside = (u > self.span[0]) & (u < self.span[1])
        dwl = self.v_read * self.c1 * self.do(np.clip(u, *self.span)) * self.k_x * inside      # dV_wl / dx [N]
        slope = self.dcells(v_wl) * dwl[:, None]                                             # [N, levels]
        m = self.r_over_a * (np.einsum("kij,jk->ij", self.DP, slope) - np.einsum("kij,jk->ij", self.DN, slope) / (1 + e))
        xdd = (m @ f0 - (1 + e + self.leak) * f0 + drive_rate) / (tau * (1 + e))
        g = self.gamma
        return (tau * (1 + e) * f0 - tau * g * xdd) / (tau * (1 + e) + g * (1 + self.r_ratio - self.r_ohm * d_p))


def gamma(gbw_hz: float, k_t: float) -> float:
    """The op-amp's time constant 1 / (2 pi GBW) in model time (k_t seconds per unit)."""
    return 1.0 / (2 * np.pi * gbw_hz * k_t)


def slope_scale(o_table: tuple[np.ndarray, np.ndarray]) -> float:
    """k_x: volts of differential input per unit of x that give o a unit slope at 0."""
    dv, o = o_table
    k = np.searchsorted(dv, 0.0)
    s = (o[k + 2] - o[k - 2]) / (dv[k + 2] - dv[k - 2])
    return 1.0 / s


def prepare(model: dict, quant: dict, pdk, corner: str, path) -> tuple[dict, float]:
    """Check the model, characterize the circuit and attach its right-hand side to ``model`` (for
    the compile's reference solve; the op-amps' finite-gain and GBW terms are left out until the
    amplitude and the time scale fix them, in :func:`build`). Returns the characterization and k_x."""
    from ..ir.dynamics import MARGIN, reference

    check_model(model, path)
    kind = stage_kind(model["activation"])
    char = characterize(pdk, corner, kind)
    q, step = quant["W"]
    signed = model["activation"] == "tanh"     # the word line carries (1 + s) / 2
    if kind == "pair":
        k_x = slope_scale((char["dv"], char["o"]))
        r_over_a = (2.0 if signed else 1.0) * step / (pdk.g_step * pdk.v_read)
    else:
        # relu is unbounded: the largest activation s_max, with the margin, sits at v_g_top, where
        # the word line is at V_read. It comes from the model's trajectory (quantized W), then from
        # the characterized circuit's, which may swing further, until the circuit stays inside it
        x_ref = reference(model, {"W": q * step})[1]
        s_max = 0.0
        for k in range(RELU_PASSES + 1):
            peak = float(max(x_ref.max(), 0.1 * np.abs(x_ref).max())) or 1.0
            if peak * (1 + MARGIN) <= s_max * (1 + MARGIN / 2):
                break
            if k == RELU_PASSES:
                raise InputError(path, f"activation: relu on sky130_1t1r: the characterized circuit's trajectory "
                                       f"keeps growing (to |x| = {peak:.3g} against {s_max / (1 + MARGIN):.3g} a pass "
                                       "before), so no gate range holds it; lower W's gain or shorten t_end")
            s_max = max(s_max, peak * (1 + MARGIN))
            k_x = (analog(pdk)["follower"]["v_g_top"] - float(char["v_b"])) / s_max
            r_over_a = s_max * step / (pdk.g_step * pdk.v_read)
            model["circuit"] = Circuit(char, q, k_x, pdk.v_read, r_over_a, model["activation"], pdk.tia["gain"])
            model["circuit_bias"] = offset_bias("relu", q, step)
            x_ref = reference(model, {"W": q * step})[1]
    model["circuit"] = Circuit(char, q, k_x, pdk.v_read, r_over_a, model["activation"], pdk.tia["gain"])
    model["circuit_bias"] = offset_bias(model["activation"], q, step)
    return char, k_x


def offset_bias(activation: str, q: np.ndarray, step: float) -> np.ndarray:
    """The bias (model units) that cancels ``-W 1`` of a signed activation's unipolar word lines."""
    return -step * q.sum(axis=1) if activation == "tanh" else np.zeros(q.shape[0])


def build(model: dict, quant: dict, pdk, corner: str, a: float, k_t: float, k_x: float, char: dict,
          common: dict, path) -> dict:
    """The sky130_1t1r deck (module docstring) and the manifest's circuit fields. The state node is
    the integrator's output, ``-a`` volts per unit."""
    from .render import environment, render, spice_num
    from .dynamics import _tiles
    from ..pdk.devices import model_cards

    n = model["n"]
    q = quant["W"][0]
    r_over_a = model["circuit"].r_over_a
    R = r_over_a * a                                  # every integrator's feedback resistor
    C = model["tau"] * k_t / R
    if np.any(C < C_MIN):
        raise InputError(path, f"the integrators' capacitors come out at {float(C.min()):.3g} F, below "
                               f"{C_MIN:g} F; set a slower time_scale")
    bias = a * (model["b"] + model["circuit_bias"]) / R
    # the G- TIA: its feedback (and return) resistor puts the largest possible column current at
    # the PDK's analog tia_swing, and no higher than R
    an = analog(pdk)
    r_tia = min(R, an["tia_swing"] / (q.shape[1] * pdk.g_max * pdk.v_read))
    # the circuit with the amplitude's finite-gain terms (Circuit), for the initial state's cards
    model["circuit"] = Circuit(char, q, k_x, pdk.v_read, r_over_a, model["activation"], pdk.tia["gain"], R, r_tia,
                               a / pdk.tia["gain"], gamma(pdk.tia["gbw_hz"], k_t))
    cell_fet, dp = fet_models(pdk)
    op = opamp_numbers(pdk)
    kx = model["circuit"].k_x
    kind = stage_kind(model["activation"])
    # V(x) = -a x: a pair's gates see vcm +- k x / 2, a follower's gate v_b + k x
    gain, k_o = (-kx / (2 * a), pair_k_o(pdk)) if kind == "pair" else (-kx / a, float(char["k_o"]))
    tiles = _tiles("w", q, [f"a_{j}" for j in range(n)], "blp", "bln", pdk, cell_fet)
    states = [{"i": i, "c": spice_num(C[i]), "bias": spice_num(bias[i]),
               "stage": "\n".join(activation_stage(kind, str(i), f"x_{i}", gain, f"a_{i}", dp, op, k_o, an)),
               "inputs": [{"k": k, "gm": spice_num(a * model["U"][i, k] / R)}
                          for k in range(len(model["inputs"])) if model["U"][i, k] != 0]} for i in range(n)]
    cards = model_cards(pdk.models, corner) + cell_fet["cards"] + dp["cards"]
    t_stop = model["t_end"] * k_t
    supplies = "\n".join(_supplies(pdk, dp, kind, float(char.get("v_b", 0.0))))
    ic = ic_card(a, model["x0"], model["circuit"], r_tia, tiles)
    deck = render(environment(pdk), "dynamics", **{**common, "model_cards": cards, "tstep": spice_num(t_stop / TRAN_POINTS)},
                  states=states, tiles=tiles, op=op, r=spice_num(R), r_tia=spice_num(r_tia), supplies=supplies,
                  stage_kind=kind, ic=ic, a=spice_num(-a), dp_w=an["pair"]["w_um"], dp_l=an["pair"]["l_um"],
                  i_tail=spice_num(an["pair"]["i_tail"]), r_load=spice_num(an["pair"]["r_load"]),
                  r_source=spice_num(an["follower"]["r_source"]))
    # supply energy: the op-amps' outputs (word-line followers, integrators, TIAs) draw |I_out|; the
    # differential pairs' tails are drawn from VDD itself
    probes = [f"i(edr_{j})" for j in range(n)] + [f"i(ei_{i})" for i in range(n)] + [f"i(et_{i})" for i in range(n)]
    energy = {"probes": probes + ["i(vdd)"], "weights": [1.0] * (len(probes) + 1),
              "bias_a": float(np.sum(np.abs(bias))), "input_gm": (a * model["U"] / R).tolist(), "stages": 3 * n}
    return {"deck": deck, "tiles": tiles, "amplitude": -a, "scaling_extra": {"k_x": kx}, "energy": energy,
            "integrator": {"c_f": C.tolist(), "r_ohm": [R] * n, "leak": True, "opamp": op},
            "circuit": {"circuit": {"kind": "1t1r", "stage": kind, "k_x": k_x, "r_over_a": r_over_a, "corner": corner,
                                    "a0": pdk.tia["gain"], "gbw_hz": pdk.tia["gbw_hz"], "r_tia_ohm": r_tia, "r_ohm": R,
                                    "tolerance_fs": TOLERANCE_FS, "arrays": {k: f"arrays/char_{k}.npy" for k in char}}},
            "arrays": {f"char_{k}": v for k, v in char.items()}}


def ic_card(a: float, x0: np.ndarray, circuit: "Circuit", r_tia: float, tiles: list[dict]) -> str:
    """The initial state ``x0`` as deck cards, the way the controller's reset holds it. In the
    operating point at t = 0, ``.ic`` holds each integrator's op-amp (internal node) at ``-a x0``,
    its summing node and the G- TIA's input at 0 V, the TIA's output at ``-R_T I_N`` and each word
    line's follower where the characterization puts it for ``x0``. So each capacitor starts charged
    to ``-a x0``, no node floats, and the rest (the cells and the activation stages, which
    ``.nodeset`` starts at their characterized voltages) solves against fixed word lines. The
    transient releases every node at t = 0."""
    from .render import spice_num

    char, q = circuit.char, circuit.q
    x0 = np.asarray(x0, float)
    dv = np.clip(circuit.k_x * x0, *circuit.span)
    tn = -r_tia * circuit.currents(x0)[1] / circuit.r_over_a         # the G- TIA's output, -R_T I_N
    wl = circuit.v_read * circuit.p(x0)
    ic = ([f"V(oi_{i})={spice_num(-a * v)}" for i, v in enumerate(x0)]
          + [f"V({p}_{i})=0" for p in ("blp", "bln") for i in range(x0.size)]
          + [f"V(ot_{i})={spice_num(v)}" for i, v in enumerate(tn)]
          + [f"V(odr_{i})={spice_num(v)}" for i, v in enumerate(wl)])
    guess = [f"V(x_{i})={spice_num(-a * v)}" for i, v in enumerate(x0)]
    guess += [f"V(a_{i})={spice_num(v)}" for i, v in enumerate(wl)]
    guess += [f"V(tn_{i})={spice_num(v)}" for i, v in enumerate(tn)]
    for k, node in enumerate(STAGE_NODES[circuit.kind]):
        vals = np.interp(dv, char["dv"], char["stage"][:, k])
        guess += [f"V({node[:-2]}_{i})={spice_num(v)}" for i, v in enumerate(vals)]
    # every cell's mid node, from its level's characterized curve at its word line's voltage
    vm = np.stack([np.interp(wl, char["v"], char["cell_vm"][k]) for k in range(char["cell_vm"].shape[0])])
    for t in tiles:
        (r0, r1), (c0, c1) = t["rows"], t["cols"]
        for side, lev in (("p", np.maximum(q, 0)), ("n", np.maximum(-q, 0))):
            guess += [f"V(x{t['name']}.m{side}_{j - r0}_{i - c0})={spice_num(vm[lev[i, j], j])}"
                      for j in range(r0, r1) for i in range(c0, c1)]
    return ".ic " + " ".join(ic) + "\n.nodeset " + " ".join(guess)


def circuit_from(out, d: dict, q: np.ndarray, v_read: float):
    """The Circuit of a compiled design (its characterization arrays under OUT)."""
    c = d["circuit"]
    char = {k: np.load(out / rel, allow_pickle=False) for k, rel in c["arrays"].items()}
    a = -d["scaling"]["amplitude_v_per_unit"]
    return Circuit(char, q, c["k_x"], v_read, c["r_over_a"], d["activation"], c["a0"], c["r_ohm"], c["r_tia_ohm"],
                   a / c["a0"], gamma(c["gbw_hz"], d["scaling"]["time_s_per_unit"]))
