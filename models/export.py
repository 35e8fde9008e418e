"""`tact export`: ONNX graphs that let decoding stop after any layer and resume later.

One graph per decoder layer (its KV cache buffer read and extended in place), one per exit point that
fills the KV cache of the layers a token skipped, and one exit head (norm weight as an input, shared LM head). The
graphs hold no weights of their own: their initializers point into `model.safetensors` as ONNX
external data, so the model ships once. Half-precision checkpoints get an fp32 `onnx_weights.bin`, which
is not shipped: the runtime writes it again when it is missing. ``models.model_dir.store_half`` (`tact export --half`) first
stores the weights in fp16: half the size on disk, and nothing changes for weights already fp16-rounded.
Works for any Llama-style directory (GQA, Qwen2 biases and Mistral/Qwen2 sliding windows included). Needs the
`onnx` package.

Each decoder layer and the exit head also get an 8-bit twin (`*.int8.onnx`, listed under ``int8`` in graphs.json):
the same graph with its weight products as onnxruntime's MatMulNBits on the 8-bit blocks of ``models.quantize``,
which decoding steps read when the runtime is asked for ``weights="int8"``. Their weight file is derived too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.exits import KV_FILL_MAPS, kv_fill_map_names
from models.model_dir import (EXIT_HEAD_GRAPH, EXIT_HEADS, EXPORTED_FROM, GRAPHS_INDEX, KV_CACHE_LAYOUT,
                              WIDENED_WEIGHTS, ModelDirError, check_model_dir, export_source_digests, header_digest,
                              kv_fill_graph_name, layer_graph_name, read_safetensors_index, rms_norm_eps,
                              sliding_window, write_atomically, write_json_object, write_widened_weights)
from models.quantize import BITS, BLOCK, INT8_WEIGHTS, int8_layout, write_int8_weights

OPSET = 17
FLOAT = TensorProto.FLOAT
CONTRIB_DOMAIN = "com.microsoft"  # onnxruntime's own operators (GroupQueryAttention)


class WeightRefs:
    """Initializers as external-data references into files of fp32 tensors: the model's weights (model.safetensors,
    or its fp32 copy) and the learned KV fill maps in exit_heads.safetensors (models.exits.KV_FILL_MAPS, saved in
    fp32 by models.architecture.EarlyExitLM.exit_state_dict). ``read_from``: the files the graphs built so far read."""

    def __init__(self, model_dir: Path):
        src = model_dir / "model.safetensors"
        index = read_safetensors_index(src)
        if all(e.dtype == "F32" for e in index.values()):
            self.location = src.name
            layout = {n: (e.shape, e.offset, e.length) for n, e in index.items()}
        else:  # widen into a side file; the safetensors stays the source of truth (models.model_dir)
            self.location = WIDENED_WEIGHTS
            layout = write_widened_weights(model_dir)
        self.index = {n: (self.location, *where) for n, where in layout.items()}  # name -> (file, shape, offset, length)
        exits = model_dir / EXIT_HEADS
        maps = {n: e for n, e in read_safetensors_index(exits).items() if n.startswith(KV_FILL_MAPS + ".")} if exits.is_file() else {}
        for n, e in maps.items():
            if e.dtype != "F32":
                raise ModelDirError(f"{exits}: {n} is {e.dtype}, the kv_fill graphs read fp32",
                                    "refit the maps with `tact train controller --kv-fill-only`")
            self.index[n] = (EXIT_HEADS, e.shape, e.offset, e.length)
        self.int8 = int8_layout(src)  # name -> ((N, K), blocks offset, scales offset) in INT8_WEIGHTS
        self.read_from: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.index

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.index[name][1])

    def tensor(self, name: str) -> TensorProto:
        location, shape, offset, length = self.index[name]
        return self._external(name, FLOAT, shape, location, offset, length)

    def quantized(self, name: str) -> tuple[TensorProto, TensorProto]:
        """The 8-bit blocks (N, K / BLOCK, BLOCK) and scales (N * K / BLOCK,) of ``name`` in INT8_WEIGHTS."""
        (N, K), blocks, scales = self.int8[name]
        nb = K // BLOCK
        return (self._external(name + ".int8", TensorProto.UINT8, (N, nb, BLOCK), INT8_WEIGHTS, blocks, N * K),
                self._external(name + ".scales", FLOAT, (N * nb,), INT8_WEIGHTS, scales, N * nb * 4))

    def _external(self, name: str, dtype: int, shape, location: str, offset: int, length: int) -> TensorProto:
        self.read_from.add(location)
        t = TensorProto(name=name, data_type=dtype, dims=list(shape))
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        return t


class GraphBuilder:
    def __init__(self, weights: WeightRefs, int8: bool = False):
        self.w = weights
        self.int8 = int8  # weight products in 8 bits (models.quantize) where the weight is quantized
        self.nodes: list = []
        self.inits: list = []
        self.used: set[str] = set()
        self.n = 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1, **attrs) -> str | list[str]:
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def weight(self, name: str) -> str:
        if name not in self.used:
            self.inits.append(self.w.tensor(name))
            self.used.add(name)
        return name

    def const(self, values, dtype=np.int64) -> str:
        name = self.name("const")
        self.inits.append(onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def matmul_t(self, x: str, name: str) -> str:
        """x (T, in) @ W.T for the weight ``name`` stored (out, in) as in torch: in fp32 (ORT folds the transpose
        once at load) or, in an 8-bit graph, MatMulNBits on its blocks (already (out, in))."""
        if not (self.int8 and name in self.w.int8):
            return self.op("MatMul", [x, self.op("Transpose", [self.weight(name)], perm=[1, 0])])
        blocks, scales = self.w.quantized(name)
        self.inits += [blocks, scales]
        N, nb, _ = blocks.dims
        K = nb * BLOCK
        out = self.name("matmulnbits")
        self.nodes.append(helper.make_node("MatMulNBits", [x, blocks.name, scales.name], [out], domain=CONTRIB_DOMAIN,
                                           K=K, N=N, bits=BITS, block_size=BLOCK, accuracy_level=4))
        return out

    def linear(self, x: str, prefix: str) -> str:
        """x (T, in) @ W.T (+ b); W stored (out, in) as in torch."""
        y = self.matmul_t(x, prefix + ".weight")
        if prefix + ".bias" in self.w:
            y = self.op("Add", [y, self.weight(prefix + ".bias")])
        return y

    def rms_norm(self, x: str, weight: str | None, eps: float) -> str:
        """x / sqrt(mean(x^2) + eps) over the last axis, times ``weight`` (None: the unit-RMS state alone)."""
        var = self.op("ReduceMean", [self.op("Pow", [x, self.const(2.0, np.float32)])], axes=[-1], keepdims=1)
        unit = self.op("Div", [x, self.op("Sqrt", [self.op("Add", [var, self.const(eps, np.float32)])])])
        return unit if weight is None else self.op("Mul", [unit, weight])

    def rope(self, x: str, cos: str, sin: str, head_dim: int) -> str:
        """x: (T, H, hd); cos, sin: (T, hd) -> rotate-half RoPE."""
        half = head_dim // 2
        x1, x2 = self.op("Split", [x, self.const([half, half])], axis=-1, n_out=2)
        rotated = self.op("Concat", [self.op("Neg", [x2]), x1], axis=-1)
        c = self.op("Unsqueeze", [cos, self.const([1])])  # (T, 1, hd)
        s = self.op("Unsqueeze", [sin, self.const([1])])
        return self.op("Add", [self.op("Mul", [x, c]), self.op("Mul", [rotated, s])])

    def model(self, name: str, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        opsets = [helper.make_opsetid("", OPSET)]
        if any(n.domain == CONTRIB_DOMAIN for n in self.nodes):
            opsets.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
        m = helper.make_model(graph, opset_imports=opsets, producer_name="tact-export")
        m.ir_version = 8
        return m


def _kv(b: GraphBuilder, xn: str, prefix: str, cos: str, sin: str, n_kv: int, hd: int) -> tuple[str, str]:
    """New keys (with RoPE) and values (T, Hkv, hd) from the normed hidden state (T, D)."""
    shape = b.const([0, n_kv, hd])
    k = b.op("Reshape", [b.linear(xn, prefix + ".k_proj"), shape])
    v = b.op("Reshape", [b.linear(xn, prefix + ".v_proj"), shape])
    return b.rope(k, cos, sin, hd), v


def decoder_layer_graph(w: WeightRefs, cfg: dict, i: int, int8: bool = False) -> onnx.ModelProto:
    """(hidden (T,D), past_k/past_v (1,Hkv,S,hd), seqlens_k (1,) = P+T-1, total_len () = P+T, cos/sin (T,hd))
    -> (hidden_out (T,D), present_k/present_v (1,Hkv,S,hd)).

    The cache is one buffer of S positions per layer in the layout attention reads (head-major); bound as
    both past and present (``EarlyExitRuntime``), onnxruntime's GroupQueryAttention writes the T new
    entries at P.. in place and attends causally to the first P+T. Nothing of the cache is copied, which
    a Concat of past and new keys did per layer and token, growing with the context."""
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or D // H
    eps = rms_norm_eps(cfg)
    p = f"model.layers.{i}"
    b = GraphBuilder(w, int8)
    xn = b.rms_norm("hidden", b.weight(f"{p}.input_layernorm.weight"), eps)
    q = b.rope(b.op("Reshape", [b.linear(xn, f"{p}.self_attn.q_proj"), b.const([0, H, hd])]), "cos", "sin", hd)  # (T, H, hd)
    k_new, v_new = _kv(b, xn, f"{p}.self_attn", "cos", "sin", Hkv, hd)  # (T, Hkv, hd)
    # (1, T, heads*hd), the packed layout GroupQueryAttention takes
    q3, k3, v3 = (b.op("Reshape", [x, b.const([1, -1, n * hd])]) for x, n in ((q, H), (k_new, Hkv), (v_new, Hkv)))
    ctx = b.name("attention")
    window = sliding_window(cfg, i)  # GroupQueryAttention's local_window_size: the keys a query reads, its own included
    b.nodes.append(helper.make_node(
        "GroupQueryAttention", [q3, k3, v3, "past_k", "past_v", "seqlens_k", "total_len"], [ctx, "present_k", "present_v"],
        domain=CONTRIB_DOMAIN, num_heads=H, kv_num_heads=Hkv, scale=float(1.0 / np.sqrt(hd)),
        **({} if window is None else {"local_window_size": window})))  # ctx (1, T, H*hd)
    ctx = b.op("Reshape", [ctx, b.const([-1, H * hd])])  # (T, H*hd)
    x = b.op("Add", ["hidden", b.linear(ctx, f"{p}.self_attn.o_proj")])
    xn2 = b.rms_norm(x, b.weight(f"{p}.post_attention_layernorm.weight"), eps)
    gate = b.linear(xn2, f"{p}.mlp.gate_proj")
    act = b.op("Mul", [gate, b.op("Sigmoid", [gate])])
    out = b.op("Add", [x, b.linear(b.op("Mul", [act, b.linear(xn2, f"{p}.mlp.up_proj")]), f"{p}.mlp.down_proj")])
    b.nodes.append(helper.make_node("Identity", [out], ["hidden_out"]))
    vi = helper.make_tensor_value_info
    cache = [1, Hkv, "S", hd]
    model = b.model(
        layer_graph_name(i, int8),
        [vi("hidden", FLOAT, ["T", D]), vi("past_k", FLOAT, cache), vi("past_v", FLOAT, cache),
         vi("seqlens_k", TensorProto.INT32, [1]), vi("total_len", TensorProto.INT32, []),
         vi("cos", FLOAT, ["T", hd]), vi("sin", FLOAT, ["T", hd])],
        [vi("hidden_out", FLOAT, ["T", D]), vi("present_k", FLOAT, cache), vi("present_v", FLOAT, cache)],
    )
    return model


def kv_fill_graph(w: WeightRefs, cfg: dict, exit_layer: int) -> onnx.ModelProto:
    """(hidden (T,D), cos/sin (T,hd)) -> keys, values (T, n, Hkv, hd) of the n layers after `exit_layer`, computed
    from the exiting hidden state (CALM-style state propagation), so later tokens can attend to a token that
    skipped those layers.

    Each later layer's input is the exiting state h itself, or, where the exit has learned KV fill maps
    (models.exits.KV_FILL_MAPS), h for layer exit_layer + 1 and a linear map of h for the layers after it (one
    product for all of them). Each layer's norm weight is folded into its K and V projections, stacked into one
    weight that onnxruntime folds once at load: one product for all n layers (a batched one with the maps, one
    input per layer). The per-layer form ran ~15 nodes a layer, so an exit at layer 4 of 12 cost more than a
    decoder layer in node overheads alone (docs/code-model.md).
    """
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or D // H
    eps = rms_norm_eps(cfg)
    later = range(exit_layer + 1, cfg["num_hidden_layers"])
    n = len(later)
    b = GraphBuilder(w)
    projections, weights = [], []  # per later layer: its K and V projections (D, 2 * Hkv * hd), norm weight folded in
    for j in later:
        gain = b.op("Unsqueeze", [b.weight(f"model.layers.{j}.input_layernorm.weight"), b.const([1])])  # (D, 1)
        pair = []
        for proj in ("k_proj", "v_proj"):
            projections.append(f"model.layers.{j}.self_attn.{proj}")
            pair.append(b.op("Mul", [b.op("Transpose", [b.weight(f"{projections[-1]}.weight")], perm=[1, 0]), gain]))
        weights.append(b.op("Concat", pair, axis=1))
    map_weight, map_bias = kv_fill_map_names(exit_layer)
    if map_weight in w and n > 1:
        m = n - 1
        if w.shape(map_weight) != (m, D, D) or w.shape(map_bias) != (m, D):
            raise ValueError(f"kv_fill_{exit_layer}: learned maps of shape {w.shape(map_weight)} and {w.shape(map_bias)}, "
                             f"expected {(m, D, D)} and {(m, D)}; refit them with `tact train controller --kv-fill-only`")
        maps = b.op("Reshape", [b.op("Transpose", [b.weight(map_weight)], perm=[1, 0, 2]), b.const([D, m * D])])  # (D, m * D)
        predicted = b.op("Add", [b.op("MatMul", ["hidden", maps]), b.op("Reshape", [b.weight(map_bias), b.const([m * D])])])
        inputs = b.op("Concat", [b.op("Unsqueeze", ["hidden", b.const([1])]),
                                 b.op("Reshape", [predicted, b.const([0, m, D])])], axis=1)  # (T, n, D)
        unit = b.op("Transpose", [b.rms_norm(inputs, None, eps)], perm=[1, 0, 2])  # (n, T, D)
        stacked = b.op("Concat", [b.op("Unsqueeze", [x, b.const([0])]) for x in weights], axis=0)  # (n, D, 2 * Hkv * hd)
        kv = b.op("Transpose", [b.op("MatMul", [unit, stacked])], perm=[1, 0, 2])  # (T, n, 2 * Hkv * hd)
        kv = b.op("Reshape", [kv, b.const([0, n * 2 * Hkv * hd])])
    else:  # every later layer reads h: one RMS normalisation shared by all
        kv = b.op("MatMul", [b.rms_norm("hidden", None, eps), b.op("Concat", weights, axis=1)])  # (T, n * 2 * Hkv * hd)
    biased = [f"{p}.bias" in w for p in projections]
    if any(biased):  # Qwen2-style K/V biases, on every projection
        if not all(biased):
            raise ValueError(f"kv_fill_{exit_layer}: K/V biases on some projections only")
        kv = b.op("Add", [kv, b.op("Concat", [b.weight(f"{p}.bias") for p in projections], axis=0)])
    kv = b.op("Reshape", [kv, b.const([0, n, 2, Hkv, hd])])
    k, v = b.op("Split", [kv, b.const([1, 1])], axis=2, n_out=2)  # each (T, n, 1, Hkv, hd)
    k = b.op("Reshape", [k, b.const([0, n * Hkv, hd])])
    k = b.op("Reshape", [b.rope(k, "cos", "sin", hd), b.const([0, n, Hkv, hd])])
    v = b.op("Reshape", [v, b.const([0, n, Hkv, hd])])
    b.nodes.append(helper.make_node("Identity", [k], ["keys"]))
    b.nodes.append(helper.make_node("Identity", [v], ["values"]))
    vi = helper.make_tensor_value_info
    return b.model(kv_fill_graph_name(exit_layer), [vi("hidden", FLOAT, ["T", D]), vi("cos", FLOAT, ["T", hd]), vi("sin", FLOAT, ["T", hd])],
                   [vi("keys", FLOAT, ["T", n, Hkv, hd]), vi("values", FLOAT, ["T", n, Hkv, hd])])


def exit_head_graph(w: WeightRefs, cfg: dict, int8: bool = False) -> onnx.ModelProto:
    """(hidden (T,D), norm_weight (D)) -> logits (T,V): any exit's norm, then the shared LM head."""
    D, V = cfg["hidden_size"], cfg["vocab_size"]
    b = GraphBuilder(w, int8)
    xn = b.rms_norm("hidden", "norm_weight", rms_norm_eps(cfg))
    head = "lm_head.weight" if "lm_head.weight" in w and not cfg.get("tie_word_embeddings", False) else "model.embed_tokens.weight"
    logits = b.matmul_t(xn, head)
    b.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    vi = helper.make_tensor_value_info
    return b.model(EXIT_HEAD_GRAPH, [vi("hidden", FLOAT, ["T", D]), vi("norm_weight", FLOAT, [D])], [vi("logits", FLOAT, ["T", V])])


def _save(graph: onnx.ModelProto, path: Path) -> None:
    """One graph, written whole in place of any earlier one (a read-only one too)."""
    write_atomically(path, lambda tmp: onnx.save(graph, str(tmp)))


def export_model_dir(model_dir: Path) -> dict:
    """Write the graphs beside the weights and `graphs.json` listing them; returns that index. The old index goes
    first and the new one comes last, so an export that stops partway leaves a directory that asks for `tact export`,
    not graphs of two exports listed as one."""
    model_dir = Path(model_dir)
    cfg = check_model_dir(model_dir, need_onnx=False)
    (model_dir / GRAPHS_INDEX).unlink(missing_ok=True)
    w = WeightRefs(model_dir)
    L = cfg["num_hidden_layers"]
    index = {"opset": OPSET, "kv_cache": KV_CACHE_LAYOUT, "weights": w.location, "decoder_layers": [], "kv_fill": {},
             "exit_head": "exit_head.onnx"}
    index[EXPORTED_FROM] = export_source_digests(model_dir)  # the runtime refuses graphs whose sources changed since
    if any(sliding_window(cfg, i) for i in range(L)):  # the runtime refuses graphs exported without them
        index["sliding_windows"] = [sliding_window(cfg, i) for i in range(L)]
    for i in range(L):
        name = f"decoder_layer_{i}.onnx"
        _save(decoder_layer_graph(w, cfg, i), model_dir / name)
        index["decoder_layers"].append(name)
    for layer in range(L - 1):
        name = f"kv_fill_{layer}.onnx"
        _save(kv_fill_graph(w, cfg, layer), model_dir / name)
        index["kv_fill"][str(layer)] = name
    if EXIT_HEADS in w.read_from:  # the runtime refuses graphs whose maps moved since (models.runtime)
        index["kv_fill_maps"] = header_digest(model_dir / EXIT_HEADS)
    _save(exit_head_graph(w, cfg), model_dir / "exit_head.onnx")
    # the same layers and head with 8-bit weights, for decoding steps (models.quantize); their weight file is derived
    int8 = {"weights": INT8_WEIGHTS, "bits": BITS, "block_size": BLOCK, "decoder_layers": [], "exit_head": "exit_head.int8.onnx"}
    for i in range(L):
        name = f"decoder_layer_{i}.int8.onnx"
        _save(decoder_layer_graph(w, cfg, i, int8=True), model_dir / name)
        int8["decoder_layers"].append(name)
    _save(exit_head_graph(w, cfg, int8=True), model_dir / int8["exit_head"])
    write_int8_weights(model_dir)
    index["int8"] = int8
    write_json_object(model_dir / GRAPHS_INDEX, index)
    return index
