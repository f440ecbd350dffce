"""The generic PDK's circuit of a continuous-time model: RC integrators fed by ideal current
mirrors, behavioural activations, and the crossbar tiles of its weights (the model and its
scaling: ``compiler/ir/dynamics.py``; sky130_1t1r's transistor circuit: ``backend/dynamics_1t1r.py``)."""

from __future__ import annotations

import numpy as np

from ..ir.dynamics import MARGIN

C_INT = 1e-12                 # F, every integrator's capacitor
TRAN_POINTS = 1000            # largest step of the transient: the window over this


def _tiles(prefix: str, q: np.ndarray, inputs: list[str], out_p: str, out_n: str, pdk,
           fet_model: dict | None = None) -> list[dict]:
    """The crossbar tiles of one weight matrix ``q`` [outputs, inputs] (levels): input j drives word
    line ``inputs[j]``; output i's pair sums on nodes ``<out_p>_i`` / ``<out_n>_i``. Each tile is a
    subckt on local ports (wl_*, blp_*, bln_*), its devices formatted in bulk as a network tile's."""
    from .render import chunks
    from .spice import PORTS_PER_LINE, device_block

    rows, cols = pdk.tile_rows, pdk.tile_cols // 2
    n_out, n_in = q.shape
    gp = pdk.g_min + np.maximum(q, 0) * pdk.g_step
    gn = pdk.g_min + np.maximum(-q, 0) * pdk.g_step
    tiles = []
    for r0 in range(0, n_in, rows):
        for c0 in range(0, n_out, cols):
            r1, c1 = min(r0 + rows, n_in), min(c0 + cols, n_out)
            ports = [f"wl_{j}" for j in range(r1 - r0)] + [f"bl{s}_{i}" for i in range(c1 - c0) for s in ("p", "n")]
            nodes = inputs[r0:r1] + [f"{o}_{i}" for i in range(c0, c1) for o in (out_p, out_n)]
            if fet_model is not None:          # 1T1R: the access transistors' gates
                ports, nodes = ports + ["sel"], nodes + ["sel"]
            tiles.append({"name": f"{prefix}_r{r0 // rows}c{c0 // cols}", "layer": prefix, "rows": [r0, r1],
                          "cols": [c0, c1], "port_lines": chunks(ports, PORTS_PER_LINE),
                          "node_lines": chunks(nodes, PORTS_PER_LINE),
                          "devices": device_block(gp[c0:c1, r0:r1].T, gn[c0:c1, r0:r1].T, pdk, fet_model, None,
                                                  guard=True)})
    return tiles


_EXPR = {"tanh": "tanh({x})", "sigmoid": "1/(1+exp(-({x})))", "relu": "max({x},0)", "identity": "({x})"}


def ic_line(a: float, x0: np.ndarray) -> str:
    """The deck's ``.ic`` card for initial state ``x0`` at ``a`` volts per unit."""
    from .render import spice_num

    return ".ic " + " ".join(f"V(x_{i})={spice_num(a * v)}" for i, v in enumerate(x0))


#: the noise file, next to the deck (an XSPICE filesource reads it relative to ngspice's working folder)
NOISE_FILE = "noise.txt"


def noise_text(k_t: float, dt: float, currents: np.ndarray) -> str:
    """The noise file: per line the physical time and each noisy integrator's current (A)."""
    import io

    buf = io.StringIO()
    t = np.arange(currents.shape[0]) * dt * k_t
    np.savetxt(buf, np.column_stack([t, currents]), fmt="%.10g")
    return buf.getvalue()


def _generic_circuit(model: dict, quant: dict, pdk, a: float, k_t: float, s_max: float, s_in_max: float,
                     x_max: float, common: dict, forcing: np.ndarray | None = None, plan: dict | None = None) -> dict:
    """The generic PDK's deck: RC integrators fed by ideal current mirrors, behavioural activations
    (module docstring); with ``forcing`` (ir.dynamics.noise_path) each noisy state's integrator also
    takes ``a sigma xi / R`` from the noise file. Returns the deck, the tiles and the manifest's
    circuit fields."""
    from .render import environment, render, spice_num

    n, vf = model["n"], model["form"] == "vector_field"
    v_fs, v_read, g_step = pdk.tia_v_out_fs, pdk.v_read, pdk.g_step
    R = model["tau"] * k_t / C_INT
    # current into integrator i: a (W s + U u + b) / R_i; the crossbar gives sum_j q_ij g_step A_j with
    # word-line voltage A_j = V_read s_j / s_max, so the mirror gain is a w_step s_max / (g_step V_read R_i)
    mirror = a * quant["W2" if vf else "W"][1] * s_max / (g_step * v_read * R)
    drive = f"{spice_num(v_read / s_max)}*{_EXPR[model['activation']]}"
    hidden, drivers, extra = [], [], {}
    if vf:
        h = model["hidden"]
        x_fs = x_max * (1 + MARGIN)                       # x drives W1's word lines at V_read x / x_fs
        a_h = v_fs / (s_in_max * (1 + MARGIN))            # hidden pre-activation h at a_h volts per unit
        rf = a_h * quant["W1"][1] * x_fs / (g_step * v_read)
        drivers = [{"i": j, "gain": spice_num(v_read / (a * x_fs))} for j in range(n)]
        # U1 u(t) (the model time among the inputs) reaches hidden unit k as transconductors into its
        # sense node, as U u reaches the integrators: hv_k gains rf * gm * u = a_h U1_kj u
        U1 = model.get("U1", np.zeros((h, 0)))
        hidden = [{"k": k, "rf": spice_num(rf), "off": spice_num(a_h * model["b1"][k]),
                   "act": drive.format(x=f"V(hv_{k})/{spice_num(a_h)}"),
                   "inputs": [{"k": j, "gm": spice_num(a_h * U1[k, j] / rf)} for j in range(U1.shape[1]) if U1[k, j] != 0]}
                  for k in range(h)]
        tiles = (_tiles("w1", quant["W1"][0], [f"ax_{j}" for j in range(n)], "hp", "hn", pdk)
                 + _tiles("w2", quant["W2"][0], [f"a_{k}" for k in range(h)], "blp", "bln", pdk))
        extra = {"hidden_v_per_unit": a_h, "hidden_max_reference": s_in_max}
    else:
        h = 0
        tiles = _tiles("w", quant["W"][0], [f"a_{j}" for j in range(n)], "blp", "bln", pdk)
    states = []
    for i in range(n):
        states.append({"i": i, "r": None if vf else spice_num(R[i]), "mirror": spice_num(mirror[i]),
                       "act": None if vf else drive.format(x=f"V(x_{i})/{spice_num(a)}"),
                       "bias": spice_num(a * model["b"][i] / R[i]),
                       "inputs": [{"k": k, "gm": spice_num(a * model["U"][i, k] / R[i])}
                                  for k in range(len(model["inputs"])) if model["U"][i, k] != 0]})
    noise, extra_files = None, {}
    if forcing is not None:
        # tau dx/dt gains sigma xi: the integrator's current a sigma xi / R_i, like its bias a b_i / R_i
        noisy = [i for i in range(n) if model["noise"]["sigma"][i] > 0]
        noise = {"file": NOISE_FILE, "states": noisy, "zeros": " ".join("0" for _ in noisy),
                 "ones": " ".join("1" for _ in noisy), "dt_s": spice_num(plan["dt"] * k_t),
                 "bandwidth_hz": spice_num(plan["bandwidth"] / k_t)}
        extra_files["noise_text"] = noise_text(k_t, plan["dt"], forcing[:, noisy] * (a / R[noisy]))
    deck = render(environment(pdk), "dynamics", **common, states=states, hidden=hidden, drivers=drivers,
                  tiles=tiles, c=spice_num(C_INT), ic=ic_line(a, model["x0"]), a=spice_num(a), noise=noise)
    # supply energy (eval/dynamics.py): every stage draws |I_out|; the mirrors scale their
    # sense currents; a vector field's hidden TIAs source their bit lines' currents
    drv = ([f"i(ex_{j})" for j in range(n)] + [f"i(ba_{k})" for k in range(h)]
           + [f"i(vh{s}_{k})" for k in range(h) for s in ("p", "n")]) if vf else [f"i(ba_{j})" for j in range(n)]
    sense = [f"i(vs{s}_{i})" for i in range(n) for s in ("p", "n")]
    energy = {"probes": drv + sense, "weights": [1.0] * len(drv) + np.repeat(mirror, 2).tolist(),
              "bias_a": float(np.sum(np.abs(a * model["b"] / R))), "input_gm": (a * model["U"] / R[:, None]).tolist(),
              "stages": 2 * n + 2 * h}
    return {"deck": deck, "tiles": tiles, "scaling_extra": extra, "energy": energy, **extra_files,
            **({"noise": {"file": f"spice/{NOISE_FILE}", "states": noise["states"],
                          "source": "an XSPICE filesource per deck playing seeded Gaussian samples, linear in between"}}
               if noise else {}),
            "integrator": {"c_f": [C_INT] * n, "r_ohm": R.tolist(), "leak": not vf},
            "circuit": {"mirror_gain": mirror.tolist(), "s_max": s_max}}


def _arrays(model: dict) -> dict:
    keys = ["U", "b", "x0", "tau"] + (["b1", "U1"] if model["form"] == "vector_field" else [])
    return {**{k: np.asarray(W, float) for k, W in model["layers"].items()},
            **{k: np.asarray(model[k], float) for k in keys}}
