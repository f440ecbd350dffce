"""Run block jobs in parallel, isolated from each other.

Local: a pool of ``jobs`` long-lived worker processes (spawned, so each gets its own ngspice).
Each task is sent to one idle worker. A worker that dies while it runs a task, or that overruns
``timeout`` (counted from when the worker has started, so a loaded machine's slow spawn and
simulator start-up are not charged to the first task), is killed and replaced; that task is
reported as an error and the rest go on.

Distributed: the same function runs on a Dask cluster (``scheduler="tcp://host:port"``). Tasks carry
everything they need (deck text, conductances), so workers need no shared file system.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import socket
import struct
import multiprocessing.connection
import time
import traceback
from typing import Callable

from ..errors import AmscError, InputError, ToolError

_CTX = mp.get_context("spawn")
#: what a worker sends once it has started (imports, ``init``); a task's timeout counts from then
_READY = ("ready", None)
#: a worker not started within this many seconds fails its task (a hung simulator start-up)
STARTUP_TIMEOUT = 120.0


def _describe(e: BaseException) -> str:
    if isinstance(e, AmscError):
        return e.what
    return f"{type(e).__name__}: {e} ({traceback.format_exc().strip().splitlines()[-2].strip()})"


def _call(fn, arg):
    try:
        return ("ok", fn(arg))
    except Exception as e:  # noqa: BLE001 - a block's failure is data, not a crash
        return ("error", _describe(e))


def _worker(fn, conn, init):
    if init is not None:
        try:
            init()
        except Exception:  # noqa: BLE001 - the first task reports the same failure with context
            pass
    conn.send(_READY)        # started: a task's time runs from here, not from the spawn
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
    def __init__(self, fn, init):
        self.conn, child = _CTX.Pipe()
        self.proc = _CTX.Process(target=_worker, args=(fn, child, init), daemon=True)
        self.proc.start()
        child.close()
        self.task: int | None = None
        self.started = 0.0
        self.born = time.monotonic()
        self.ready = False

    def deadline(self, timeout: float) -> float:
        """When the running task overruns: ``timeout`` after the worker took it, once started."""
        return self.started + timeout if self.ready else self.born + STARTUP_TIMEOUT + timeout

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
              on_done: Callable[[int, tuple], None] | None = None, init: Callable | None = None) -> list[tuple]:
    """``fn(arg)`` for every arg on a pool of ``jobs`` processes; returns ``("ok", result)`` or
    ``("error", message)`` per arg, in order. ``init()`` runs once in each worker as it starts
    (imports, simulator start-up), so that work overlaps across workers and is not timed per task."""
    results: list[tuple | None] = [None] * len(args)
    queue = list(range(len(args)))
    workers = [_Worker(fn, init) for _ in range(max(1, min(jobs, len(args))))]

    def finish(k, res):
        results[k] = res
        if on_done is not None:
            on_done(k, res)

    try:
        while queue or any(w.task is not None for w in workers):
            for w in workers:
                if w.task is None and queue:
                    k = queue.pop(0)
                    w.task, w.started = k, time.monotonic()
                    w.conn.send((k, args[k]))
            busy = [w for w in workers if w.task is not None]
            # sleep until a worker answers or dies, or the next timeout is due
            mp.connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy],
                               timeout=max(0.0, min(w.deadline(timeout) for w in busy) - time.monotonic()))
            for i, w in enumerate(workers):
                if w.task is None:
                    continue
                res, lost = None, True  # lost: the worker process is gone or hung and must be replaced
                if w.conn.poll():
                    try:
                        msg = w.conn.recv()
                        if msg == _READY:       # its task was waiting for the start-up: time it from now
                            w.ready, w.started = True, time.monotonic()
                            continue
                        _, res = msg
                        lost = False
                    except (EOFError, OSError):
                        res = ("error", f"worker process died (exit code {w.proc.exitcode})")
                elif not w.proc.is_alive():
                    res = ("error", f"worker process crashed (exit code {w.proc.exitcode})")
                elif time.monotonic() > w.deadline(timeout):
                    res = ("error", f"timed out after {timeout:g} s" if w.ready else
                           f"the worker process did not start within {STARTUP_TIMEOUT:g} s")
                if res is None:
                    continue
                k = w.task
                w.task = None
                if lost:
                    w.stop(kill=True)
                    workers[i] = _Worker(fn, init) if queue else w
                finish(k, res)
    finally:
        for w in workers:
            if w.proc.is_alive():
                w.stop()
    return results  # type: ignore[return-value]


_ADDRESS = re.compile(r"^(?:tcp://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})/?$")
#: a Dask handshake message is small: its frames' total size and count (distributed.comm.tcp framing)
_HANDSHAKE_BYTES, _HANDSHAKE_FRAMES = 1 << 20, 64


def dask_handshake(scheduler: str, connect_timeout: float) -> None:
    """Check that a Dask scheduler answers at ``scheduler`` (``tcp://HOST:PORT``) before a client is
    made: a Dask server sends its handshake first, framed as ``Q`` total bytes, ``Q`` frame count.
    Whatever else listens there (an HTTP server, such as the scheduler's own dashboard, says nothing
    until it is asked; another protocol sends something that is not that framing) is refused in one
    line within ``connect_timeout``, instead of a client that waits forever or reads a garbage
    length as a 3 EiB message."""
    m = _ADDRESS.match(scheduler.strip())
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise InputError("--scheduler", f"{scheduler!r} is not a Dask scheduler address; expected tcp://HOST:PORT "
                                        "(the scheduler's port, 8786 by default)")
    host, port = m.group(1).strip("[]"), int(m.group(2))
    deadline = time.monotonic() + connect_timeout
    head = b""
    try:
        with socket.create_connection((host, port), timeout=connect_timeout) as s:
            while len(head) < 16:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(16 - len(head))
                if not chunk:
                    raise InputError(scheduler, "no Dask scheduler answered: the connection was closed without a "
                                                "Dask handshake")
                head += chunk
    except (socket.timeout, TimeoutError):
        what = ("something listens there but sent no Dask handshake" if head or _listening(host, port)
                else "no answer")
        raise InputError(scheduler, f"no Dask scheduler answered: {what} within {connect_timeout:g} s (an HTTP server, such as the Dask "
                                    "dashboard on port 8787? the scheduler listens on 8786 by default)") from None
    except OSError as e:
        raise InputError(scheduler, f"no Dask scheduler answered: cannot connect ({e.strerror or e})") from None
    total, frames = struct.unpack("<QQ", head)
    if not (16 <= total <= _HANDSHAKE_BYTES and 1 <= frames <= _HANDSHAKE_FRAMES):
        raise InputError(scheduler, "no Dask scheduler answered: what listens there sent something that is not a "
                                    "Dask handshake")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def dask_connect(scheduler: str, connect_timeout: float = 10.0):
    """A client of the Dask scheduler at ``scheduler``, or a clear error within ``connect_timeout``."""
    try:
        from distributed import Client
    except ImportError:
        raise ToolError("dask", "--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    if not scheduler.startswith(("tls://", "ucx://", "inproc://", "ws://", "wss://")):
        dask_handshake(scheduler, connect_timeout)
    try:
        return Client(scheduler, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise InputError(scheduler, f"no Dask scheduler answered within {connect_timeout:g} s "
                                    f"({type(e).__name__})") from None


def run_dask(fn: Callable, args: list, client, timeout: float,
             on_done: Callable[[int, tuple], None] | None = None, prepare: Callable | None = None) -> list[tuple]:
    """The same contract as :func:`run_local`, on a connected Dask client (closed afterwards).
    ``prepare(arg)``, if given, turns an argument into what is sent (loading its data) just before it
    is submitted; at most four tasks per worker thread are in flight, so memory stays bounded."""
    from distributed import as_completed

    results: list[tuple | None] = [None] * len(args)
    futures: dict = {}
    try:
        # Dask gives no per-task start time, so the bound is per wave of tasks: every block gets
        # `timeout` seconds once a thread is free for it.
        threads = max(1, sum(client.nthreads().values()))
        deadline = time.monotonic() + timeout * -(-len(args) // threads)
        window = 4 * threads
        nxt = 0

        def submit():
            nonlocal nxt
            a = args[nxt] if prepare is None else prepare(args[nxt])
            fut = client.submit(_call, fn, a, pure=False)
            futures[fut] = nxt
            nxt += 1
            return fut

        while nxt < len(args) and nxt < window:
            submit()
        pending = as_completed(list(futures), loop=client.loop, timeout=max(1.0, deadline - time.monotonic()))
        try:
            for fut in pending:
                k = futures[fut]
                try:
                    res = fut.result()
                except Exception as e:  # noqa: BLE001 - KilledWorker and friends
                    res = ("error", f"Dask task failed: {type(e).__name__}: {e}")
                results[k] = res
                fut.release()
                if on_done is not None:
                    on_done(k, res)
                if nxt < len(args):
                    pending.add(submit())
        except TimeoutError:
            pass
        for fut, k in futures.items():
            if results[k] is None:
                fut.cancel()
        for k in range(len(args)):
            if results[k] is None:
                results[k] = ("error", f"timed out after {timeout:g} s on the Dask cluster")
                if on_done is not None:
                    on_done(k, results[k])
    finally:
        client.close()
    return results  # type: ignore[return-value]
