"""Run block jobs in worker processes: each block in its own spawned process, at most ``jobs`` at
once, each with a timeout. A block that crashes its process or hangs is reported against that
block; the others still run."""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from typing import Callable

_CTX = mp.get_context("spawn")


def _child(fn, arg, conn):
    try:
        conn.send(("ok", fn(arg)))
    except BaseException as e:  # noqa: BLE001 - everything goes back to the parent as text
        from ..errors import AmscError

        msg = e.what if isinstance(e, AmscError) else f"{type(e).__name__}: {e}"
        if not isinstance(e, AmscError):
            msg += " | " + traceback.format_exc().strip().splitlines()[-1]
        conn.send(("error", msg))
    finally:
        conn.close()


def run_isolated(fn: Callable, args: list, jobs: int, timeout: float,
                 on_done: Callable[[int, tuple], None] | None = None) -> list[tuple]:
    """Call ``fn(arg)`` for every arg in a separate process. Returns, in order of ``args``,
    ``("ok", result)`` or ``("error", message)``. ``fn`` must be importable (top level)."""
    results: list[tuple | None] = [None] * len(args)
    queue = list(enumerate(args))
    running: dict[int, tuple] = {}
    while queue or running:
        while queue and len(running) < max(1, jobs):
            k, arg = queue.pop(0)
            recv, send = _CTX.Pipe(duplex=False)
            p = _CTX.Process(target=_child, args=(fn, arg, send), daemon=True)
            p.start()
            send.close()
            running[k] = (p, recv, time.monotonic())
        for k, (p, recv, t0) in list(running.items()):
            res = None
            if recv.poll():
                try:
                    res = recv.recv()
                except EOFError:
                    res = ("error", f"worker process died (exit code {p.exitcode})")
            elif not p.is_alive():
                p.join()
                res = ("error", f"worker process crashed (exit code {p.exitcode})") if not recv.poll() else recv.recv()
            elif time.monotonic() - t0 > timeout:
                p.kill()
                res = ("error", f"timed out after {timeout:g} s")
            if res is not None:
                p.join(timeout=5)
                recv.close()
                del running[k]
                results[k] = res
                if on_done is not None:
                    on_done(k, res)
        if running:
            time.sleep(0.01)
    return results  # type: ignore[return-value]
