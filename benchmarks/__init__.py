"""Benchmarks for cxloop (not part of the installed package); run them with ``python -m``."""
