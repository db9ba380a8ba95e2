"""Writing a simulated run: the stream (JSONL, JSONL.gz or Parquet) and its gold file."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterable, List

import orjson

from simulator.scenario import Run


def write_run(run: Run, out_dir: Path, fmt: str = "jsonl") -> dict:
    """``out_dir/<name>.<fmt>`` and ``out_dir/<name>.gold.json``; returns a small summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = run.sc.name
    if fmt in ("jsonl", "jsonl.gz"):
        path = out_dir / f"{name}.{fmt}"
        n = write_jsonl(path, run.steps())
    elif fmt == "parquet":
        path = out_dir / f"{name}.parquet"
        n = write_parquet(path, run.steps())
    else:
        raise ValueError(f"format {fmt!r}: use jsonl, jsonl.gz or parquet")
    gold_path = out_dir / f"{name}.gold.json"
    gold_path.write_bytes(orjson.dumps(run.gold, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return {"scenario": name, "records": n, "stream": str(path), "gold": str(gold_path),
            "faults": [f["type"] for f in run.gold["faults"]]}


def write_jsonl(path: Path, steps: Iterable[List[bytes]]) -> int:
    n = 0
    # mtime=0: gzip output is byte-identical across runs too
    f = gzip.GzipFile(path, "wb", mtime=0) if str(path).endswith(".gz") else open(path, "wb")
    with f:
        for lines in steps:
            if lines:
                f.write(b"\n".join(lines))
                f.write(b"\n")
                n += len(lines)
    return n


def write_parquet(path: Path, steps: Iterable[List[bytes]], rows_per_group: int = 200_000) -> int:
    """Parquet with the ingest's wire fields as columns (labels as a map)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = ("id", "kind", "ts", "service", "environment", "source", "name", "value", "body", "severity",
              "change_type", "change_id", "version", "commit", "author", "link")
    schema = pa.schema([(f, pa.float64() if f == "value" else pa.int64() if f == "ts" else pa.string())
                        for f in fields] + [("labels", pa.map_(pa.string(), pa.string()))])
    writer = pq.ParquetWriter(path, schema)
    buf: list = []
    n = 0

    def flush():
        cols = {f: [r.get(f) for r in buf] for f in fields}
        cols["labels"] = [list((r.get("labels") or {}).items()) for r in buf]
        writer.write_table(pa.table(cols, schema=schema))
        buf.clear()

    for lines in steps:
        for line in lines:
            buf.append(orjson.loads(line))
        n += len(lines)
        if len(buf) >= rows_per_group:
            flush()
    if buf:
        flush()
    writer.close()
    return n
