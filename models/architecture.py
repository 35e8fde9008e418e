"""The early-exit code model in torch: a Llama-style decoder whose tokens may leave after any layer.

Weights use Hugging Face Llama names, so the directory loads as `LlamaForCausalLM` too
(`config.json` + `model.safetensors` + `tokenizer.json`). What Llama lacks lives beside it in
`exit_heads.safetensors`: one RMSNorm per early exit (the LM head is shared) and the per-layer
Stop&Exit controller. Training only: the server runs the ONNX export (`models.runtime`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.exits import (CONTROLLER_HIDDEN, CONTROLLER_OUTPUTS, EXIT_CALIBRATION, EXIT_CALIBRATION_IDENTITY,
                          HARM_CALIBRATION, KV_FILL_MAPS, STOP_CALIBRATION)
from models.model_dir import rms_norm_eps


@dataclass
class ModelConfig:
    vocab_size: int = 8192
    hidden_size: int = 256
    intermediate_size: int = 704
    num_hidden_layers: int = 8
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    max_position_embeddings: int = 1024
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    bos_token_id: int = 0
    eos_token_id: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_hf(self) -> dict:
        """config.json in the Hugging Face Llama format."""
        d = asdict(self)
        d.update(
            architectures=["LlamaForCausalLM"],
            model_type="llama",
            hidden_act="silu",
            head_dim=self.head_dim,
            tie_word_embeddings=True,
            attention_bias=False,
            mlp_bias=False,
            rope_scaling=None,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            torch_dtype="float32",
            use_cache=True,
        )
        return d

    @classmethod
    def from_hf(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known and v is not None}
        if "rope_theta" not in values and isinstance(d.get("rope_parameters"), dict):
            values["rope_theta"] = d["rope_parameters"].get("rope_theta", 10000.0)
        values.setdefault("rms_norm_eps", rms_norm_eps(d))  # the serving default, not this class's
        if isinstance(values.get("eos_token_id"), list):
            values["eos_token_id"] = values["eos_token_id"][0]
        return cls(**values)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rope_tables(cfg: ModelConfig, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: (T, head_dim) for the given positions (T,), Llama's rotate-half layout."""
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float32, device=positions.device) / cfg.head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]  # (T, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (T, hd)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, T, hd)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_attention_heads * hd, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_key_value_heads * hd, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_key_value_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.num_attention_heads * hd, cfg.hidden_size, bias=False)

    def forward(self, x, cos, sin, past=None):
        """x: (B, T, D); past: (k, v) each (B, Hkv, P, hd). Returns y (B, T, D) and the new (k, v) with P+T entries."""
        B, T, _ = x.shape
        cfg = self.cfg
        q = self.q_proj(x).view(B, T, cfg.num_attention_heads, cfg.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(B, T, cfg.num_key_value_heads, cfg.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        v = self.v_proj(x).view(B, T, cfg.num_key_value_heads, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        P = k.shape[2] - T
        rep = cfg.num_attention_heads // cfg.num_key_value_heads
        kk = k.repeat_interleave(rep, dim=1) if rep > 1 else k
        vv = v.repeat_interleave(rep, dim=1) if rep > 1 else v
        # Query i (absolute P+i) sees keys 0..P+i.
        mask = torch.ones(T, P + T, dtype=torch.bool, device=x.device).tril(diagonal=P)
        y = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, -1)
        return self.o_proj(y), (k, v)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, past=None):
        a, kv = self.self_attn(self.input_layernorm(x), cos, sin, past)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, kv


class Backbone(nn.Module):
    """Named `model` inside the LM so parameter names match Hugging Face Llama."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class EarlyExitLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        # One norm per early exit; the last layer exits through model.norm. The LM head is the
        # (tied) embedding matrix, shared by every exit.
        self.exit_norms = nn.ModuleList(RMSNorm(cfg.hidden_size, cfg.rms_norm_eps) for _ in range(cfg.num_hidden_layers - 1))
        # Stop&Exit controller: per layer, a small MLP on that exit's normed hidden state -> logits of
        # P(exit) and P(stop) (models.exits).
        self.controller = nn.ModuleList(
            nn.Sequential(nn.Linear(cfg.hidden_size, CONTROLLER_HIDDEN), nn.ReLU(), nn.Linear(CONTROLLER_HIDDEN, CONTROLLER_OUTPUTS))
            for _ in range(cfg.num_hidden_layers))
        # Per layer [a, b, c] of P(stop) = sigmoid(a * stop_logit + b * top1_logprob + c) (models.exits);
        # the identity until fit_controller calibrates it.
        self.register_buffer(STOP_CALIBRATION, torch.tensor([[1.0, 0.0, 0.0]] * cfg.num_hidden_layers))
        # Per layer [a, b, c, d] of P(exit) = sigmoid(a * exit_logit + b * top1_logprob + c * margin + d); the
        # identity (the hidden-state estimate alone) until fit_controller calibrates it.
        self.register_buffer(EXIT_CALIBRATION, torch.tensor([list(EXIT_CALIBRATION_IDENTITY)] * cfg.num_hidden_layers))
        # Per layer [a, b, c, d] of P(harm) (models.exits.HARM_CALIBRATION); zeros: not fitted
        self.register_buffer(HARM_CALIBRATION, torch.zeros(cfg.num_hidden_layers, 4))
        # Learned KV fill maps of the open exits (models.exits.KV_FILL_MAPS), by tensor name: fitted after training
        # (models.train_lm.fit_kv_fill_maps) and only for the trunk they were fitted on, so not parameters; saved
        # with the exit heads. Empty: every exit fills the skipped layers' KV from its hidden state itself.
        self.kv_fill_maps: dict[str, torch.Tensor] = {}
        self.apply(self._init)

    def _init(self, m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def exit_norm(self, layer: int) -> RMSNorm:
        return self.model.norm if layer == self.cfg.num_hidden_layers - 1 else self.exit_norms[layer]

    def exit_logits(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """h: (..., D) hidden state after `layer` -> logits (..., V) through that exit's norm and the shared head."""
        return self.exit_norm(layer)(h) @ self.model.embed_tokens.weight.T

    def forward(self, input_ids: torch.Tensor, layer_dropout: float = 0.0, positions: torch.Tensor | None = None):
        """input_ids: (B, T). Returns the hidden state after every layer: list of L tensors (B, T, D).

        With layer_dropout > 0 (training), layer l is skipped with probability layer_dropout * l / (L-1):
        rising with depth, as in LayerSkip, so early layers learn to carry the prediction alone.
        """
        B, T = input_ids.shape
        if positions is None:
            positions = torch.arange(T, device=input_ids.device)
        cos, sin = rope_tables(self.cfg, positions)
        x = self.model.embed_tokens(input_ids)
        L = self.cfg.num_hidden_layers
        hidden = []
        for i, layer in enumerate(self.model.layers):
            p = layer_dropout * i / max(L - 1, 1)
            if self.training and p > 0 and torch.rand(()) < p:
                hidden.append(x)
                continue
            x, _ = layer(x, cos, sin)
            hidden.append(x)
        return hidden

    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights under Hugging Face Llama names (model.safetensors)."""
        sd = {k: v for k, v in self.state_dict().items() if k.startswith("model.")}
        sd["lm_head.weight"] = self.model.embed_tokens.weight
        return {k: v.detach().contiguous().clone() for k, v in sd.items()}

    def exit_state_dict(self) -> dict[str, torch.Tensor]:
        """Exit norms, controller and learned KV fill maps (exit_heads.safetensors)."""
        sd = {k: v for k, v in self.state_dict().items() if k.startswith(("exit_norms.", "controller.", STOP_CALIBRATION, EXIT_CALIBRATION,
                                                                                 HARM_CALIBRATION))}
        sd.update(self.kv_fill_maps)
        return {k: v.detach().float().contiguous().clone() for k, v in sd.items()}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def load_torch_model(model_dir, *, strict_exits: bool = False) -> EarlyExitLM:
    """An EarlyExitLM from a model directory (safetensors only). A plain Llama directory without
    exit heads gets identity exit norms and an untrained controller unless strict_exits."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    from models.model_dir import EXIT_HEADS, RESTORE, ModelDirError, read_safetensors_index

    model_dir = Path(model_dir)
    cfg = ModelConfig.from_hf(json.loads((model_dir / "config.json").read_text()))
    model = EarlyExitLM(cfg)
    state = load_file(str(model_dir / "model.safetensors"))
    state.pop("lm_head.weight", None)
    exits = model_dir / EXIT_HEADS
    if exits.exists():
        read_safetensors_index(exits)  # a damaged file: ModelDirError naming it, not safetensors' own words
        extra = load_file(str(exits))
        model.kv_fill_maps = {k: v.float() for k, v in extra.items() if k.startswith(KV_FILL_MAPS + ".")}
        state.update({k: v for k, v in extra.items() if k.startswith("exit_norms.") or
                      k in model.state_dict() and model.state_dict()[k].shape == v.shape})
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that differ from config.json's sizes
        raise ModelDirError(f"{model_dir / 'config.json'} does not match {model_dir / 'model.safetensors'} "
                            f"({str(exc).splitlines()[-1].strip()})", RESTORE) from None
    # Older directories have no stop, exit or harm calibration: P(stop) and P(exit) are then the controller's own
    # estimates, and the harm rule takes their product.
    missing = [k for k in missing if k not in (STOP_CALIBRATION, EXIT_CALIBRATION, HARM_CALIBRATION)]
    missing = [k for k in missing if not k.startswith(("exit_norms.", "controller."))] if not strict_exits else missing
    if missing or unexpected:
        raise ModelDirError(f"{model_dir / 'model.safetensors'} does not hold the weights {model_dir / 'config.json'} "
                            f"describes (missing {missing[:3]}, unexpected {unexpected[:3]})", RESTORE)
    return model.eval()
