"""8-bit weights for decoding steps: block quantization shared by `tact export` and the runtime (numpy only).

Decoding one token reads every weight once, and on a CPU that read is most of the step's time. Stored in
8 bits (blocks of ``BLOCK`` along the input, one fp32 scale a block, symmetric around ``ZERO_POINT``), the
weight matrices of the decoder layers and the LM head are a quarter of their fp32 size; onnxruntime's
``MatMulNBits`` (com.microsoft) multiplies with them directly. Prefill (hundreds of rows) is compute-bound and
keeps the fp32 graphs.

The file the 8-bit graphs read (``INT8_WEIGHTS``) is derived from model.safetensors like the fp32 copy
(``models.model_dir.WIDENED_WEIGHTS``): not shipped, written again by the runtime when it is missing or stale,
with the same layout export used (``int8_layout``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.model_dir import derived_is_current, load_tensors, read_safetensors_index, write_derived

INT8_WEIGHTS = "onnx_weights.int8.bin"
BITS = 8
BLOCK = 32  # weights per scale, along the input dimension
ZERO_POINT = 128  # MatMulNBits' default for 8 bits: stored q = round(w / scale) + 128
MAX_INT8_ROWS = 8  # tokens per step up to which a step reads the 8-bit graphs (decode and speculative verify)


def quantized_names(index: dict) -> list[str]:
    """The tensors stored in 8 bits: every 2-D projection of the decoder layers and the LM head (the tied
    embedding when there is no separate head), whose input width is a multiple of BLOCK. ``index``: name -> entry
    with ``shape`` (models.model_dir.read_safetensors_index)."""
    names = []
    for name, e in index.items():
        shape = tuple(e.shape)
        if len(shape) != 2 or shape[1] % BLOCK:
            continue
        if name.endswith("_proj.weight") or name in ("lm_head.weight", "model.embed_tokens.weight"):
            names.append(name)
    return sorted(names)


def quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w (N, K) float -> (q (N, K / BLOCK, BLOCK) uint8, scales (N * K / BLOCK,) float32), MatMulNBits' layout."""
    N, K = w.shape
    blocks = np.asarray(w, np.float32).reshape(N, K // BLOCK, BLOCK)
    scales = np.abs(blocks).max(-1, keepdims=True) / (ZERO_POINT - 1)  # (N, K / BLOCK, 1)
    scales = np.where(scales > 0, scales, np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(blocks / scales), -(ZERO_POINT - 1), ZERO_POINT - 1) + ZERO_POINT
    return q.astype(np.uint8), scales.reshape(-1)


def dequantize(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The weights (N, K) that ``quantize``'s output stands for."""
    N, nb, _ = q.shape
    return ((q.astype(np.float32) - ZERO_POINT) * scales.reshape(N, nb, 1)).reshape(N, -1)


def int8_layout(src: Path) -> dict[str, tuple[tuple[int, ...], int, int]]:
    """Per quantized tensor of model.safetensors at ``src``: (shape (N, K), offset of its blocks, offset of its
    scales) in INT8_WEIGHTS; the blocks take N * K bytes, the scales N * K / BLOCK * 4."""
    index = read_safetensors_index(src)
    layout, offset = {}, 0
    for name in quantized_names(index):
        N, K = index[name].shape
        layout[name] = ((N, K), offset, offset + N * K)
        offset += _int8_bytes(N, K)
    return layout


def _int8_bytes(N: int, K: int) -> int:
    """Bytes of one (N, K) tensor in INT8_WEIGHTS: its blocks (one byte a weight), then its fp32 scales."""
    return N * K + N * K // BLOCK * 4


def int8_size(src: Path) -> int:
    return sum(_int8_bytes(N, K) for (N, K), _, _ in int8_layout(src).values())


def write_int8_weights(model_dir: Path, out_dir: Path | None = None) -> dict:
    """Write INT8_WEIGHTS for model_dir's model.safetensors into out_dir (default: beside it); returns its layout."""
    model_dir = Path(model_dir)
    out_dir = Path(out_dir) if out_dir is not None else model_dir
    src = model_dir / "model.safetensors"
    layout = int8_layout(src)
    tensors = load_tensors(src, list(layout))

    def chunks():  # blocks then scales, tensor by tensor, as int8_layout counts them
        for name in layout:
            q, scales = quantize(tensors[name])
            yield q.tobytes()
            yield scales.tobytes()

    write_derived(src, out_dir / INT8_WEIGHTS, chunks())
    return layout


def int8_is_fresh(src: Path, out: Path) -> bool:
    return derived_is_current(src, out, int8_size(src))
