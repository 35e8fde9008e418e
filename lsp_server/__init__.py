"""Tact language server: inline completion with early-exit decoding, next-edit prediction, telemetry."""

import os

# onnxruntime's thread pool owns the cores while decoding. numpy's BLAS (OpenBLAS) starts threads of its own for a
# product as large as the draft head's (models/draft_head.py), and they fought onnxruntime's: with a head, speculative
# ran at 0.73x of `full`; with one BLAS thread, a head accepted about as often gave 1.14x (docs/code-model.md). Set here, before anything loads
# numpy, so every `tact` command gets it (code importing models/ alone does not); the environment wins. Torch's
# threads (training) are not OpenBLAS's and keep their count.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

# What `tact serve` imports, by module name (pyproject's dependencies): an editor's check of an interpreter asks
# missing_modules(), which finds them without importing them (a second's imports before every start).
SERVE_MODULES = ("pygls", "lsprotocol", "onnxruntime", "tokenizers", "numpy", "tree_sitter", "tree_sitter_python",
                 "sqlite_utils", "platformdirs", "safetensors")


def missing_modules() -> list[str]:
    """The modules of SERVE_MODULES this interpreter cannot import: `import lsp_server` works from a checkout
    alone, without them, and the server then fails at its start."""
    from importlib.util import find_spec

    return [name for name in SERVE_MODULES if find_spec(name) is None]
