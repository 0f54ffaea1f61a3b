"""Benchmark of `--method auto` across the systems (see `speclearn.auto.benchmark`)."""
