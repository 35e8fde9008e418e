"""Tact's models: the early-exit code model, its tokenizer, training, ONNX export and the onnxruntime runtime,
and the CDHF acceptance model (`models.acceptance`).

Serving imports only `models.runtime`, `models.model_dir`, `models.tokenizer`, `models.syntax` (tree-sitter)
and the numpy parts of `models.acceptance` (numpy, onnxruntime, tokenizers, tree-sitter). Training and export
modules import torch, transformers or scikit-learn and are never loaded by the server.
"""
