"""The compiled design on disk has one owner: this package.

- :mod:`.writer` writes an output folder (streamed into a temporary sibling, hashed, renamed into
  place, sealed);
- :mod:`.folder` knows its layout (where each array lives: ``array_file``) and reads it back: ownership (what compile may replace), confinement (every path a
  command reads stays inside the folder), integrity (the manifest's schema, files nobody listed),
  locking (no compile replaces a folder another command is using) and the commands' own result
  files (written atomically, removed when a command starts so that no stale verdict survives).

Every command goes through it; no other module parses ``manifest.json``.
"""

from .folder import (MANIFEST, SEAL, confined, foreign_files, load_compiled, load_ir, load_json, peek_kind, require_network, using,  # noqa: F401
                     write_bytes_atomic, write_json_atomic)
