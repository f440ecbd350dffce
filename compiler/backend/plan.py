"""OutputPlan: everything a compile writes, in memory, then written atomically with a manifest."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import InputError
from ..ir.serialize import canonical_json as json_text

MANIFEST = "manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


class OutputPlan:
    def __init__(self):
        self.files: dict[str, bytes] = {}

    def add(self, relpath: str, content: str | bytes) -> None:
        p = PurePosixPath(relpath)
        if p.is_absolute() or ".." in p.parts or relpath in self.files or relpath == MANIFEST:
            raise ValueError(f"bad or duplicate output path {relpath!r}")
        self.files[relpath] = content.encode() if isinstance(content, str) else bytes(content)

    def digests(self) -> dict[str, str]:
        return {k: sha256(v) for k, v in sorted(self.files.items())}


def check_output_dir(out: Path) -> None:
    """Refuse an output path we must not replace: a file, or a non-empty folder amsc did not write."""
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise InputError(out, "output path exists and is not a directory")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise InputError(out, f"output directory is not empty and holds no {MANIFEST} from amsc; "
                                  "refusing to replace it")


def write_plan(plan: OutputPlan, manifest: dict, out: Path) -> None:
    """Write every file into a temporary sibling folder, then swap it in with renames."""
    out = Path(out)
    check_output_dir(out)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(parent, f"cannot create output parent folder: {e.strerror}") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    try:
        for rel, data in sorted(plan.files.items()):
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
        (tmp / MANIFEST).write_text(json_text(manifest))
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            os.rename(out, old / "x")
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(out, f"cannot write output: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
