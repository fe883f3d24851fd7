"""Run every benchmark and print its table; figures go to docs/performance.md by hand."""

from bench.train_throughput import main

main()
