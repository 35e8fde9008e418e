"""Tact's models: the early-exit code model, its tokenizer, training, ONNX export and the onnxruntime runtime.

Serving imports only `models.runtime`, `models.model_dir` and `models.tokenizer` (numpy, onnxruntime,
tokenizers). Training and export modules import torch and transformers and are never loaded by the server.
"""
