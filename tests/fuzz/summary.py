"""Summarize a fuzz log (AMSC_FUZZ_LOG, one JSON line per target): cases, exit codes, failures.
Exit 1 if any case failed. Used by 'make fuzz'."""

from __future__ import annotations

import json
import sys


def main(path: str) -> int:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    total = sum(r["cases"] for r in rows)
    failed = sum(len(r["failures"]) for r in rows)
    for r in rows:
        codes = ", ".join(f"exit {k}: {v}" for k, v in sorted(r.get("exit_codes", {}).items()))
        print(f"  {r['target']:40s} {r['cases']:6d} cases ({codes}), {len(r['failures'])} failed")
        for f in r["failures"]:
            print(f"    {f}")
    print(f"fuzz: {total} generated cases, {failed} failed (traceback, hang, more than one error line, or a "
          "file left behind)")
    return 1 if failed or not total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
