"""What every benchmark run records beside its figures: the machine, the commit, the time."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _head() -> str:
    """The commit the code was loaded from ("+dirty" with uncommitted changes to tracked files)."""
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")


_AT_START = _head()  # read when the benchmark starts: the run measures this code


def commit() -> str:
    return _AT_START


def machine() -> dict:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "memory_gb": round(mem_gb, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def write_json(path: Optional[Path], figures: dict) -> None:
    """Write ``figures`` (one flat object) plus the run record to ``path`` (None: do nothing)."""
    if not path:
        return
    out = dict(figures)
    out.setdefault("commit", commit())
    out.setdefault("machine", machine())
    out.setdefault("finished_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=2))
