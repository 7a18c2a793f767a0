"""Benchmarks: `make bench` runs every module here and prints its figures."""
