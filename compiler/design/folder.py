"""Reading, checking, confining and locking a compiled design's output folder (OUT).

**Ownership.** A folder amsc wrote holds a seal, ``.amsc-design``: the sha256 of its manifest.json.
The seal is derived from the manifest rather than drawn at random, so the same input still gives a
byte-identical folder. ``compile`` replaces OUT only when the seal matches the manifest and every
file in OUT is either listed in the manifest with its sha256 or a result that amsc's own commands
write there (``verify.json``, ``eval-report/``, ``.verify-cache/`` ...). Anything else -- a user's
file, a netlist edited by hand, a ``manifest.json`` amsc did not write -- makes compile refuse and
name the files; nothing is deleted.

**Confinement.** Every path that a command reads from the manifest (tile testbenches and arrays,
layer arrays, host segments, the source, the dynamics deck ...) must be a file the manifest lists,
and every listed file must resolve inside OUT, symlinks followed. Paths written inside listed files
(``rtl/sim/files.f``, ``ir.json``'s arrays) go through :func:`confined`.

**Integrity.** The manifest's values are checked against a schema (types, finite numbers, ranges)
before any command uses them; :func:`foreign_files` lists the files nobody listed, which ``verify``
reports.

**Locking.** A command that reads OUT holds a shared ``flock`` on the folder for its whole run
(:func:`using`); compile takes an exclusive one on the folder it replaces, without waiting, and
refuses in one line while another command holds it. A command's own results are removed when it
starts, so an interrupted or failed run never leaves an earlier verdict beside the design.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError
from ..frontend.common import NPY_ERRORS
from ..ir.serialize import canonical_json as json_text

MANIFEST = "manifest.json"
#: the seal of a folder amsc wrote: {"amsc_design": 1, "manifest_sha256": ...}
SEAL = ".amsc-design"

#: what each command writes into OUT besides the design itself (files and folders)
RESULTS = {
    "verify": ("verify.json", "verify.html", "verify-report", "verify-dynamics.png"),
    "evaluate": ("eval.json", "eval.html", "eval-report", "eval-dynamics.png", "eval-samples.png"),
    "report": ("report.json", "report.html", "report"),
    "rtl-sim": ("rtl_sim.json",),
}
#: amsc's caches in OUT (kept across runs: their entries are keyed by what decides them)
CACHES = (".verify-cache",)
#: the longest output folder name (bytes): 255 less the temporary folder's suffix
MAX_NAME = 200
#: the file-system errors a command meets on a full, read-only or foreign folder
_FS_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENAMETOOLONG)


def array_file(node: str, op: str, key: str) -> str:
    """Where a node's array ``key`` lives in a compiled design: a tile's under tiles/, a layer
    accumulator's under layers/ (its bias ``b`` as ``bias``), any other node's under params/."""
    if op == "xbar_tile":
        return f"tiles/{node}_{key}.npy"
    if op == "accum":
        return f"layers/{node}_{'bias' if key == 'b' else key}.npy"
    return f"params/{node}__{key}.npy"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def seal_text(manifest_text: str) -> str:
    return json_text({"amsc_design": 1, "manifest_sha256": sha256(manifest_text.encode())})


def _amsc_product(rel: str) -> bool:
    """A result, cache or temporary file that amsc's commands write into OUT (``rel`` is POSIX)."""
    top = rel.split("/", 1)[0]
    names = {n for v in RESULTS.values() for n in v}
    if top in names or top in CACHES:
        return True
    # the temporaries of atomic writes: '.verify.html.tmp', '.eval-report.tmp/...', '.tmp-XXXX.json'
    return (top.startswith(".") and top.endswith(".tmp") and top[1:-4] in names) or \
        (top.startswith(".tmp-") and top.endswith(".json") and "/" not in rel)


def _walk(out: Path):
    """Every file and symlink under ``out`` as a POSIX path relative to it (symlinks not followed)."""
    for root, dirs, files in os.walk(out, followlinks=False):
        base = Path(root).relative_to(out)
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            yield (base / name).as_posix()


def foreign_files(out: Path, manifest: dict, check_digests: bool = False) -> list[str]:
    """Files in OUT that amsc did not write: neither listed in the manifest (nor the manifest and its
    seal) nor an amsc result. With ``check_digests``, a listed file whose content changed counts too."""
    listed = {f["path"]: f["sha256"] for f in manifest.get("files", []) if isinstance(f, dict)}
    bad = []
    for rel in sorted(_walk(out)):
        if rel in (MANIFEST, SEAL) or _amsc_product(rel):
            continue
        p = out / rel
        if rel not in listed or p.is_symlink():
            bad.append(rel)
        elif check_digests and file_sha256(p) != listed[rel]:
            bad.append(f"{rel} (changed since amsc wrote it)")
    return bad


def check_output_dir(out: Path) -> None:
    """Refuse an output path that compile must not replace: a file, a symlink, or a non-empty folder
    that is not, file for file, an output of amsc (see the module docstring)."""
    if len(out.name.encode()) > MAX_NAME:
        raise InputError(str(out)[:80] + "...", f"the output folder's name is {len(out.name.encode())} bytes; at most "
                                                f"{MAX_NAME} (file systems allow 255, and compile adds a suffix to it)")
    if not (out.exists() or out.is_symlink()):
        return
    if not out.is_dir() or out.is_symlink():
        raise InputError(out, "output path exists and is not a directory")
    try:
        if not any(out.iterdir()):
            return
        manifest_text = (out / MANIFEST).read_text()
        sealed = (out / SEAL).read_text() == seal_text(manifest_text)
        manifest = json.loads(manifest_text)
    except (OSError, ValueError, UnicodeDecodeError):
        sealed, manifest = False, None
    if not sealed or not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise InputError(out, f"output folder is not empty and is not an amsc design (no {SEAL} seal matching its "
                              f"{MANIFEST}); refusing to replace it: nothing was deleted (an output of an amsc "
                              "older than the seal? remove it yourself, or compile into another folder)")
    bad = foreign_files(out, manifest, check_digests=True)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise InputError(out, f"holds files amsc did not write: {', '.join(bad[:3])}{more}; refusing to replace the "
                              "folder (move them out, or compile into another folder): nothing was deleted")


# ---------------------------------------------------------------- locking

def _lock(out: Path, exclusive: bool) -> int | None:
    """A flock on the folder ``out`` (its descriptor), or None if another amsc command holds one."""
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def replacing(out: Path):
    """Held by compile while it swaps a new design in for the folder ``out`` (if there is one)."""
    fd = None
    if out.is_dir() and not out.is_symlink():
        fd = _lock(out, exclusive=True)
        if fd is None:
            raise InputError(out, "another amsc command (verify, run, evaluate, report or rtl-sim) is using this "
                                  "folder; it was not replaced: compile again when that command has ended")
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def using(out: str | Path, command: str):
    """Held by every command that reads OUT: a shared lock for the whole run (compile cannot replace
    the folder under it), the command's previous results removed first (an interrupted or failed
    run leaves none behind), and its temporaries removed and file-system errors (full disk,
    read-only folder) turned into one line if it fails."""
    out = Path(out)
    if not out.is_dir():
        raise InputError(out, "not a directory; expected the output folder of 'amsc compile'")
    fd = None
    for _ in range(3):   # the folder may be swapped by a compile between open and flock: take the new one
        fd = _lock(out, exclusive=False)
        if fd is None or os.fstat(fd).st_ino == os.stat(out).st_ino:
            break
        os.close(fd)
        fd = None
    if fd is None:
        raise InputError(out, "a compile is replacing this folder; try again when it has ended")
    try:
        results = RESULTS.get(command, ())
        if results:
            _writable(out, command, results[0])
            for name in results:
                _remove(out / name)
        yield out
    except OSError as e:
        if e.errno not in _FS_ERRNOS:
            raise
        raise InputError(e.filename or out, f"{command}: {e.strerror}; its results were not written") from None
    finally:
        for name in RESULTS.get(command, ()):
            _remove(out / f".{name}.tmp", quiet=True)
        for p in out.glob(".tmp-*.json"):
            _remove(p, quiet=True)
        os.close(fd)


def _writable(out: Path, command: str, result: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=out)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise InputError(out, f"cannot write here ({e.strerror}); {command} writes {result} into the design's "
                              "folder: copy it somewhere writable") from None


def _remove(p: Path, quiet: bool = False) -> None:
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    except OSError as e:
        if not quiet:
            raise InputError(p, f"cannot remove the previous result ({e.strerror})") from None


# ---------------------------------------------------------------- results

def write_bytes_atomic(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary sibling and a rename; nothing is left on failure."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, obj) -> None:
    write_bytes_atomic(path, json_text(obj).encode())


# ---------------------------------------------------------------- reading

def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def load_json(path: Path, what: str):
    """A JSON file of a compiled design (NaN and Infinity refused)."""
    try:
        return json.loads(path.read_text(), parse_constant=_no_constant)
    except FileNotFoundError:
        raise InputError(path, f"missing; is this the output folder of 'amsc compile'? ({what})") from None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InputError(path, f"unreadable {what}: {e}") from None


def peek_kind(out: str | Path) -> str | None:
    """The manifest's kind, peeked at without checking the files (the command's loader checks them)."""
    try:
        return json.loads((Path(out) / MANIFEST).read_text()).get("kind")
    except (OSError, ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return None       # the command's loader names what is wrong with the folder


def confined(out: Path, rel, where: Path | str, what: str) -> Path:
    """``out / rel`` if it resolves inside ``out`` (symlinks followed), else a one-line refusal
    naming ``where`` (the file that gave the path) and ``what`` it is."""
    if not isinstance(rel, str) or not rel or "\0" in rel or Path(rel).is_absolute():
        raise InputError(where, f"{what} {rel!r} is not a relative path inside the design's folder")
    root = out.resolve()
    p = (out / rel).resolve()
    if root not in p.parents:
        raise InputError(where, f"{what} {rel!r} points outside the design's folder")
    return out / rel


def require_network(out: Path, manifest: dict, command: str) -> None:
    """Refuse a continuous-time design in a command that runs networks, in one line."""
    if manifest.get("kind") == "dynamics":
        raise InputError(out, f"is a continuous-time design (amsc_dynamics): '{command}' runs networks; its circuit is "
                              "checked by 'amsc verify' and run by 'amsc evaluate' (docs/dynamics.md)")


def load_compiled(out: str | Path) -> dict:
    """Read ``OUT/manifest.json``, check it against the schema, check that every file it lists is
    inside OUT, present and unchanged, and that every path it names is one of those files."""
    from .schema import check_manifest, path_fields

    out = Path(out)
    if not out.is_dir():
        raise InputError(out, "not a directory; expected the output folder of 'amsc compile'")
    mpath = out / MANIFEST
    manifest = load_json(mpath, "manifest")
    check_manifest(mpath, manifest)
    listed = set()
    for f in manifest["files"]:
        rel = f["path"]
        p = confined(out, rel, mpath, "file entry")
        try:
            digest = file_sha256(p)
        except OSError:
            raise InputError(p, "listed in manifest.json but missing or unreadable (partial output?)") from None
        if digest != f["sha256"]:
            raise InputError(p, "sha256 differs from manifest.json (file modified after compile)")
        listed.add(rel)
    for field, rel in path_fields(manifest):
        if rel not in listed:
            raise InputError(mpath, f"{field} {rel!r} is not a file the manifest lists"
                             + (" (it points outside the design's folder)" if ".." in str(rel).split("/")
                                or str(rel).startswith("/") else ""))
    return manifest


def load_ir(out: Path):
    """The lowered IR of a compiled design (``ir.json``), with every array confined to the folder and
    checked against the digest ``ir.json`` records."""
    import numpy as np

    from ..ir import IR

    path = out / "ir.json"
    doc = load_json(path, "IR")
    ir = IR(doc["name"], source=str(out))
    ir.g.graph.update(doc.get("graph", {}))
    for nd in doc["nodes"]:
        params = {}
        for key, dig in nd["params"].items():
            p = confined(out, array_file(nd["name"], nd["op"], key), path, f"the array of node {nd['name']!r}")
            try:
                a = np.load(p, allow_pickle=False)
            except NPY_ERRORS as e:
                raise InputError(p, f"cannot read the array of node '{nd['name']}': {e}") from None
            if hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() != dig["sha256"]:
                raise InputError(p, f"array differs from the digest in ir.json (node '{nd['name']}')")
            params[key] = a
        ir.add(nd["name"], nd["op"], nd["shape"], inputs=nd["inputs"], attrs=nd["attrs"], params=params,
               origin=nd["origin"])
    return ir
