"""Tact language server: inline completion with early-exit decoding, next-edit prediction, telemetry."""

__version__ = "0.1.0"
