"""`make bench`: every benchmark, each a side-by-side measurement in one run.

python -m bench [--device auto|cpu|cuda] [--rows N] [--batch-size B] [--no-data-prep]
"""

from __future__ import annotations

import argparse
import logging

from bench import data_prep, gradient_overhead, peers, train_throughput
from htl.train import resolve_device

log = logging.getLogger("bench")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=5, help="gradient bench: timed rounds")
    parser.add_argument("--steps", type=int, default=20, help="gradient bench: steps per round")
    parser.add_argument(
        "--no-data-prep", action="store_true", help="skip the 1M/5M/19M-row data preparation"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("htl").setLevel(logging.WARNING)  # per-epoch lines are noise here
    device = resolve_device(args.device)
    result = gradient_overhead.run(args.rows, args.batch_size, args.rounds, args.steps, device)
    log.info("%s\n", gradient_overhead.report(result, args.batch_size, device))
    rates = train_throughput.run(args.rows, args.batch_size, 2, device)
    log.info("%s\n", train_throughput.report(rates, int(args.rows * 0.8), args.batch_size, device))
    if peers.available():
        result = peers.run(args.rows, args.batch_size, 5)
        log.info("%s", peers.report(result, int(args.rows * 0.8), args.batch_size))
    else:
        log.info("peers: torch-rechub / DeepCTR-Torch not importable; `make bench` installs them")
    if not args.no_data_prep:
        log.info("\n%s", data_prep.report(data_prep.run()))


main()
