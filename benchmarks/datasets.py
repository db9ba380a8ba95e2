"""Where the labelled data sets are: ``$OPSCOPILOT_DATASETS`` or ``../shared/data`` beside the
repository (NAB, Loghub 2k, PetShop laid out as upstream ships them). Benchmarks read them in
place and also take ``--data PATH`` for any other copy."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dataset(name: str) -> Path:
    base = os.environ.get("OPSCOPILOT_DATASETS")
    return (Path(base) if base else ROOT.parent / "shared" / "data") / name
