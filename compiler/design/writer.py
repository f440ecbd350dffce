"""OutputWriter: every file of a compile streamed into a temporary sibling folder as soon as it is
rendered, hashed while it is written, sealed (see :mod:`.folder`), and the folder renamed into place
at the end; it replaces an earlier design only if that folder holds nothing amsc did not write, and
only while no other amsc command is using it.

Nothing is half-written: on an exception, Ctrl-C (SIGINT), SIGTERM (the CLI turns it into the same
interrupt) or a full disk, the temporary folder is removed and ``OUT`` is untouched. No stage holds
every output in memory: the writer keeps only each file's digest.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import InputError
from ..ir.serialize import canonical_json as json_text
from .folder import MANIFEST, SEAL, check_output_dir, replacing, seal_text, sha256  # noqa: F401 (re-exported)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


class OutputWriter:
    """Use as a context manager: ``with OutputWriter(out) as w: w.add(...); w.commit(manifest)``.
    Leaving the block without :meth:`commit` (an exception, an interrupt) removes everything."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        check_output_dir(self.out)
        self.parent = self.out.parent if str(self.out.parent) else Path(".")
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.parent))
        except OSError as e:
            raise InputError(self.parent, f"cannot create the output folder: {e.strerror}") from None
        self._digests: dict[str, str] = {}
        self.bytes_written = 0
        self.committed = False

    def __enter__(self) -> "OutputWriter":
        return self

    def __exit__(self, *exc) -> None:
        if not self.committed:
            self.abort()

    def _fail(self, rel: str, e: OSError):
        self.abort()
        if e.errno == errno.ENOSPC:
            raise InputError(self.out, f"no space left on the device while writing {rel}; nothing was written") from None
        raise InputError(self.out, f"cannot write {rel}: {e.strerror or e}") from None

    def add(self, relpath: str, content: str | bytes) -> None:
        """Write one file now (text as UTF-8) and remember its sha256."""
        p = PurePosixPath(relpath)
        if p.is_absolute() or ".." in p.parts or relpath in self._digests or relpath in (MANIFEST, SEAL):
            raise ValueError(f"bad or duplicate output path {relpath!r}")
        data = content.encode() if isinstance(content, str) else bytes(content)
        dst = self.tmp / relpath
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            with open(dst, "wb") as fh:
                fh.write(data)
        except OSError as e:
            self._fail(relpath, e)
        self._digests[relpath] = sha256(data)
        self.bytes_written += len(data)

    def add_chunks(self, relpath: str, chunks) -> None:
        """Write a file from an iterable of byte strings as they come (hashing them on the way)."""
        if relpath in self._digests or relpath in (MANIFEST, SEAL):
            raise ValueError(f"bad or duplicate output path {relpath!r}")
        h = hashlib.sha256()
        dst = self.tmp / relpath
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            with open(dst, "wb") as fh:
                for block in chunks:
                    h.update(block)
                    fh.write(block)
                    self.bytes_written += len(block)
        except OSError as e:
            self._fail(relpath, e)
        self._digests[relpath] = h.hexdigest()

    def add_file(self, relpath: str, src: Path) -> None:
        """Copy the file ``src`` in, in blocks (it is never held in memory whole)."""
        try:
            with open(src, "rb") as fin:
                self.add_chunks(relpath, iter(lambda: fin.read(1 << 22), b""))
        except OSError as e:
            self._fail(relpath, e)

    def add_npy(self, relpath: str, a: np.ndarray) -> None:
        self.add(relpath, npy_bytes(a))

    def digests(self) -> dict[str, str]:
        return dict(sorted(self._digests.items()))

    def commit(self, manifest: dict) -> None:
        """Write the manifest and its seal, and swap the folder into place: an earlier design there is
        replaced only if it still holds nothing amsc did not write, and no other command is using it."""
        try:
            text = json_text(manifest)
            (self.tmp / MANIFEST).write_text(text)
            (self.tmp / SEAL).write_text(seal_text(text))
            os.chmod(self.tmp, 0o755)
        except OSError as e:
            self._fail(MANIFEST, e)
        try:
            with replacing(self.out):
                check_output_dir(self.out)
                old = None
                if self.out.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.parent))
                    os.rename(self.out, old / "x")
                os.rename(self.tmp, self.out)
                self.committed = True
        except OSError as e:
            self._fail(MANIFEST, e)
        except InputError:
            self.abort()
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
