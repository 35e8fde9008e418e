"""Tact language server: inline completion with early-exit decoding, next-edit prediction, telemetry."""

import os

# onnxruntime's thread pool owns the cores while decoding. numpy's BLAS (OpenBLAS) starts threads of its own for a
# product as large as the draft head's (models/draft_head.py), and they fought onnxruntime's: speculative ran at
# 0.73x of `full` with the head instead of ~1.2x (docs/code-model.md). Set before anything loads numpy; the
# environment wins. Torch's threads (training) are not OpenBLAS's and keep their count.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
