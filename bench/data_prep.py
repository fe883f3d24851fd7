"""Data preparation at production scale: ingest → labels → split → encode of the synthetic
Product profile at 1M, 5M and 19M rows, each in a fresh process, timed end to end with its
peak resident memory.

Target (issue): 19M rows in under 5 minutes and under 8 GiB, time growing linearly.
`python -m bench.data_prep --rows N` runs one size and prints its JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (1_000_000, 5_000_000, 19_000_000)


def measure(rows: int) -> dict[str, float]:
    """One size, in this process: seconds per stage and the peak RSS."""
    from htl.config import DataConfig
    from htl.data.prepare import prepare_splits
    from htl.data.sources import ingest

    data = DataConfig(source="synthetic", profile="product", rows=rows)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ingest(data, Path(tmp) / "events")
        ingested = time.perf_counter()
        prepare_splits(Path(tmp) / "events", Path(tmp) / "splits", data)
        done = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "rows": rows,
        "ingest_s": ingested - start,
        "labels_split_encode_s": done - ingested,
        "total_s": done - start,
        "peak_gib": peak_kib / 2**20,
    }


def run(sizes: tuple[int, ...] = SIZES) -> list[dict[str, float]]:
    """Each size in a fresh interpreter, so one size's peak memory is not another's."""
    results = []
    for rows in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "bench.data_prep", "--rows", str(rows)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def report(results: list[dict[str, float]]) -> str:
    base = results[0]
    lines = [
        "## Data preparation: synthetic Product profile, ingest → labels → split → encode",
        "",
        "| rows | ingest (s) | labels + split + encode (s) | total (s) | s per 1M rows "
        "| vs smallest | peak memory (GiB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    per_million = base["total_s"] / (base["rows"] / 1e6)
    for r in results:
        scaled = r["total_s"] / (r["rows"] / 1e6)
        lines.append(
            f"| {r['rows']:,} | {r['ingest_s']:.1f} | {r['labels_split_encode_s']:.1f} "
            f"| {r['total_s']:.1f} | {scaled:.2f} | {scaled / per_million:.2f}× "
            f"| {r['peak_gib']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.data_prep", description=__doc__)
    parser.add_argument("--rows", type=int, default=None, help="one size (default: all)")
    args = parser.parse_args()
    if args.rows:
        print(json.dumps(measure(args.rows)))
    else:
        print(report(run()))
