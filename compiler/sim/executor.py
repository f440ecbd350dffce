"""Run block jobs in parallel, isolated from each other.

Local: a pool of ``jobs`` long-lived worker processes (spawned, so each gets its own ngspice).
Each task is sent to one idle worker. A worker that dies while it runs a task, or that overruns
``timeout``, is killed and replaced; that task is reported as an error and the rest go on.

Distributed: the same function runs on a Dask cluster (``scheduler="tcp://host:port"``). Tasks carry
everything they need (deck text, conductances), so workers need no shared file system.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from typing import Callable

from ..errors import AmscError, InputError, ToolError

_CTX = mp.get_context("spawn")


def _describe(e: BaseException) -> str:
    if isinstance(e, AmscError):
        return e.what
    return f"{type(e).__name__}: {e} ({traceback.format_exc().strip().splitlines()[-2].strip()})"


def _call(fn, arg):
    try:
        return ("ok", fn(arg))
    except Exception as e:  # noqa: BLE001 - a block's failure is data, not a crash
        return ("error", _describe(e))


def _worker(fn, conn):
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        k, arg = msg
        conn.send((k, _call(fn, arg)))


class _Worker:
    def __init__(self, fn):
        self.conn, child = _CTX.Pipe()
        self.proc = _CTX.Process(target=_worker, args=(fn, child), daemon=True)
        self.proc.start()
        child.close()
        self.task: int | None = None
        self.started = 0.0

    def stop(self, kill=False):
        try:
            if kill:
                self.proc.kill()
            else:
                self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def run_local(fn: Callable, args: list, jobs: int, timeout: float,
              on_done: Callable[[int, tuple], None] | None = None) -> list[tuple]:
    """``fn(arg)`` for every arg on a pool of ``jobs`` processes; returns ``("ok", result)`` or
    ``("error", message)`` per arg, in order."""
    results: list[tuple | None] = [None] * len(args)
    queue = list(range(len(args)))
    workers = [_Worker(fn) for _ in range(max(1, min(jobs, len(args))))]

    def finish(k, res):
        results[k] = res
        if on_done is not None:
            on_done(k, res)

    try:
        while queue or any(w.task is not None for w in workers):
            for i, w in enumerate(workers):
                if w.task is None and queue:
                    k = queue.pop(0)
                    w.task, w.started = k, time.monotonic()
                    w.conn.send((k, args[k]))
            for i, w in enumerate(workers):
                if w.task is None:
                    continue
                res = None
                if w.conn.poll():
                    try:
                        k, res = w.conn.recv()
                    except (EOFError, OSError):
                        res = ("error", f"worker process died (exit code {w.proc.exitcode})")
                elif not w.proc.is_alive():
                    res = ("error", f"worker process crashed (exit code {w.proc.exitcode})")
                elif time.monotonic() - w.started > timeout:
                    res = ("error", f"timed out after {timeout:g} s")
                if res is None:
                    continue
                k = w.task
                w.task = None
                if res[0] == "error" and ("crashed" in res[1] or "died" in res[1] or "timed out" in res[1]):
                    w.stop(kill=True)
                    workers[i] = _Worker(fn) if queue else w
                finish(k, res)
            time.sleep(0.005)
    finally:
        for w in workers:
            if w.proc.is_alive():
                w.stop()
    return results  # type: ignore[return-value]


def run_dask(fn: Callable, args: list, scheduler: str, timeout: float, connect_timeout: float = 10.0,
             on_done: Callable[[int, tuple], None] | None = None) -> list[tuple]:
    """The same contract as :func:`run_local`, on a Dask distributed cluster."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ToolError("dask", "--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise InputError(scheduler, f"no Dask scheduler answered within {connect_timeout:g} s ({type(e).__name__})") from None
    results: list[tuple | None] = [None] * len(args)
    try:
        futures = {client.submit(_call, fn, a, pure=False, key=f"amsc-block-{k}-{id(args)}"): k
                   for k, a in enumerate(args)}
        # Dask gives no per-task start time, so the bound is per wave of tasks: every block gets
        # `timeout` seconds once a thread is free for it.
        threads = max(1, sum(client.nthreads().values()))
        deadline = time.monotonic() + timeout * -(-len(args) // threads)
        try:
            for fut in as_completed(futures, timeout=max(1.0, deadline - time.monotonic())):
                k = futures[fut]
                try:
                    res = fut.result()
                except Exception as e:  # noqa: BLE001 - KilledWorker and friends
                    res = ("error", f"Dask task failed: {type(e).__name__}: {e}")
                results[k] = res
                if on_done is not None:
                    on_done(k, res)
        except TimeoutError:
            pass
        for fut, k in futures.items():
            if results[k] is None:
                fut.cancel()
                results[k] = ("error", f"timed out after {timeout:g} s on the Dask cluster")
                if on_done is not None:
                    on_done(k, results[k])
    finally:
        client.close()
    return results  # type: ignore[return-value]
