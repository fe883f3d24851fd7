"""`htl predict` at scale: rows/s and peak memory of the same registered model scoring tables of
growing size, each in a fresh process (`make bench-predict`). Chunked reading keeps the peak
flat: it must not grow with the input.

python -m bench.predict [--rows 250000 1000000 2000000] [--chunk-rows 100000]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import yaml

from htl.config import load_config
from htl.data.prepare import prepare_splits
from htl.data.sources import ingest
from htl.data.synthetic import PROFILES
from htl.steps import run_register
from htl.train import train_model

log = logging.getLogger("bench.predict")


def registered_model(root: Path) -> Path:
    """A DNN trained one epoch on 20,000 synthetic rows, registered in a SQLite store."""
    config_path = root / "config.yaml"
    overrides = {"models": ["dnn"], "register": {"model": "dnn", "name": "bench"},
                 "significance": {"reference": "dnn"}, "workdir": str(root / "work")}  # fmt: skip
    config_path.write_text(yaml.safe_dump(overrides))
    config = load_config(config_path)
    ingest(config.data, root / "events")
    prepare_splits(root / "events", root / "splits", config.data)
    spec = replace(config.training_spec("dnn"), epochs=1)
    train_model(root / "splits", "dnn", 0, spec, root / "model")
    (root / "report").mkdir()
    (root / "report" / "report.md").write_text("# bench\n")
    run_register(config, [root / "model"], root / "events", root / "report", None)
    return config_path


def score(config: Path, rows: int, root: Path, chunk_rows: int) -> dict[str, float]:
    """One `htl predict` process on `rows` synthetic rows: seconds, rows/s, peak RSS."""
    generate, _ = PROFILES["kuairand"]
    table = root / f"rows-{rows}.parquet"
    # Row groups of 100,000 rows, as a Spark or BigQuery export writes them: a Parquet file is
    # read a row group at a time, so that, not the file, bounds what one read holds.
    generate(rows, seed=1).to_parquet(table, index=False, row_group_size=100_000)
    command = [sys.executable, "-m", "htl", "predict", "--config", str(config)]
    command += ["--model", "models:/bench@challenger", "--input", str(table)]
    command += ["--output", str(root / f"scores-{rows}.parquet"), "--chunk-rows", str(chunk_rows)]
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEAK, *command], check=True, capture_output=True)
    seconds = time.perf_counter() - started
    peak_kib = int(out.stdout.decode().split()[-1])
    return {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "peak_mib": peak_kib / 1024,
    }


# A fresh wrapper per run: its RUSAGE_CHILDREN peak is that one `htl predict` process's.
PEAK = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.predict", description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[250_000, 1_000_000, 2_000_000])
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("htl").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        config = registered_model(Path(tmp))
        results = [score(config, n, Path(tmp), args.chunk_rows) for n in sorted(args.rows)]
    lines = [f"htl predict, chunks of {args.chunk_rows:,} rows, one process per size",
             f"{'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS MiB':>13}"]  # fmt: skip
    lines += [
        f"{r['rows']:>10,} {r['seconds']:>8.1f} {r['rows_per_s']:>9,.0f} {r['peak_mib']:>13,.0f}"
        for r in results
    ]
    log.info("\n".join(lines))


if __name__ == "__main__":
    main()
