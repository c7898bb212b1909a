"""Throughput and latency benchmark of the hub over HTTP; run by hand: ``python -m bench.run``."""
