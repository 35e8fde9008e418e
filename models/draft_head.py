"""A trained draft head for speculative decoding, for the steps neither prompt lookup nor the n-gram table drafts.

In the manner of EAGLE without attention: from the last layer's state at a position (the state whose prediction is
the token just emitted) and that token's embedding, a residual MLP predicts the last layer's state at the next
position, and a small output layer over the model's most frequent greedy tokens reads the next token from it.
Chained, the predicted state feeds the next draft. It runs no layer of the model, and the whole model still
verifies every draft, so speculative output does not change; only its speed may.

Why it is not shipped with the default model (docs/code-model.md): a draft costs its verification row (a second
row adds 15-20% to a step on a 2-core CPU), so drafts must be accepted often. Trained 8 minutes on a CPU, the head's
first drafts agreed with the whole model 42.2% of the time in training, but only 18.7% of them were accepted in
decoding (where lookup and the table have nothing, the next token is hard), and it lost; the simulated drafting says
a head near 60% agreement would take speculative past 1.5x. `tact train draft-head --device cuda`
trains one where an accelerator gives it the budget.

Serving: numpy and the standard library (``DraftHead``); training needs torch (``train_draft_head``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from models.exits import rms_norm
from models.model_dir import ModelDirError, command_line, load_tensors, read_record, record_entry, write_atomically

DRAFT_HEAD = "draft_head.safetensors"
VOCAB = 2048  # output tokens: the model's most frequent greedy tokens (93.8% of them on training code)
WIDTH = 512  # the MLP's hidden width
STATE_WEIGHT = 1.0  # of the predicted-state loss beside the token loss: chained drafts read the predicted state
UNROLL = 2  # training steps chained from one true state, as decoding chains drafts
VOCAB_BATCHES = 8  # batches whose greedy tokens choose the output vocabulary
_TENSORS = ("norm_in", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "norm_out", "out", "vocab")


class DraftHead:
    """A loaded draft head (numpy). ``embed`` (V, D): the model's token embeddings, which the head reads."""

    def __init__(self, tensors: dict[str, np.ndarray], embed: np.ndarray, eps: float):
        f32 = {k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items() if k != "vocab"}
        self.norm_in, self.norm_out = f32["norm_in"], f32["norm_out"]  # (D,)
        self.w1, self.b1 = f32["fc1.weight"], f32["fc1.bias"]  # (F, 2D), (F,)
        self.w2, self.b2 = f32["fc2.weight"], f32["fc2.bias"]  # (D, F), (D,)
        self.out = f32["out"]  # (K, D)
        self.vocab = np.asarray(tensors["vocab"], np.int64)  # (K,) the token id of each output row
        self.embed = embed
        self.eps = eps

    def step(self, state: np.ndarray, token: int) -> tuple[int, np.ndarray]:
        """(the token after ``token``, the predicted last-layer state at ``token``'s position (D,)) from the
        last-layer state (D,) of the position before it."""
        x = np.concatenate([rms_norm(state, self.norm_in, self.eps), self.embed[token]])  # (2D,)
        a = self.w1 @ x + self.b1  # (F,)
        a = a / (1.0 + np.exp(-a))  # SiLU
        nxt = state + self.w2 @ a + self.b2  # (D,)
        logits = self.out @ rms_norm(nxt, self.norm_out, self.eps)  # (K,)
        return int(self.vocab[int(logits.argmax())]), nxt

    def draft(self, state: np.ndarray, token: int, n: int) -> list[int]:
        """Up to n tokens after ``token``, each drafted from the state the one before predicted."""
        out: list[int] = []
        for _ in range(n):
            token, state = self.step(state, token)
            out.append(token)
        return out

    @classmethod
    def load(cls, path: Path, embed: np.ndarray, eps: float) -> "DraftHead":
        """The head at ``path`` for a model whose embeddings are ``embed`` (V, D); ModelDirError naming the fix
        when it is corrupt or was trained for another model."""
        fix = f"train it again with `tact train draft-head --model {path.parent}` or delete it"
        try:
            t = load_tensors(path)
            missing = [k for k in _TENSORS if k not in t]
            if missing:
                raise ModelDirError(f"{path} lacks {', '.join(missing)}")
            V, D = embed.shape
            K, F = len(t["vocab"]), len(t["fc1.bias"])
            shapes = {"norm_in": (D,), "fc1.weight": (F, 2 * D), "fc1.bias": (F,), "fc2.weight": (D, F), "fc2.bias": (D,),
                      "norm_out": (D,), "out": (K, D), "vocab": (K,)}
            wrong = [k for k, s in shapes.items() if t[k].shape != s]
            if wrong or not 0 < K <= V or int(t["vocab"].min()) < 0 or int(t["vocab"].max()) >= V:
                raise ModelDirError(f"{path} does not fit this model (width {D}, vocabulary {V}): {', '.join(wrong) or 'vocab'}")
        except ModelDirError as exc:
            raise ModelDirError(f"{exc}; {fix}") from exc
        except (KeyError, ValueError) as exc:
            raise ModelDirError(f"{path} is not a draft head ({exc}); {fix}") from exc
        return cls(t, embed, eps)


def train_draft_head(model_dir: Path, corpus_dir: Path, *, minutes: float = 10.0, batch_size: int = 8,
                     device: str = "cpu", seed: int = 0, vocab: int = VOCAB, width: int = WIDTH,
                     threads: int | None = None, workers: int | None = None, log=print) -> dict:
    """Train the draft head of a model directory on the model's own last-layer states over the corpus's training
    split (the trunk frozen), for ``minutes`` of wall-clock time; writes DRAFT_HEAD and records the run under
    ``draft_head`` in tact.json (`tact train draft-head`)."""
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    from models.architecture import load_torch_model
    from models.model_dir import check_model_dir, trained_context
    from models.tokenizer import load_model_tokenizer
    from models.train_lm import (ExampleSampler, autocast, batch_stream, check_corpus, check_device, load_texts,
                                 loader_workers)

    started = time.time()
    model_dir, corpus_dir = Path(model_dir), Path(corpus_dir)
    check_model_dir(model_dir, need_onnx=False)
    check_corpus(corpus_dir, "train.jsonl")  # there, and not empty
    check_device(device)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = load_torch_model(model_dir).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    info = load_model_tokenizer(model_dir)
    record = read_record(model_dir)
    window = trained_context(model.cfg.to_hf(), record)
    sampler = ExampleSampler(load_texts(corpus_dir, "train"), info, window, seed)
    stream = batch_stream(sampler, batch_size, loader_workers(device, workers))
    L, D = model.cfg.num_hidden_layers, model.cfg.hidden_size
    emb = model.model.embed_tokens.weight  # (V, D), frozen
    eps = model.cfg.rms_norm_eps

    @torch.no_grad()
    def states(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(last-layer states (B, T, D), the model's greedy token after each position (B, T))."""
        with autocast(device):
            h = model(ids)[-1]
            greedy = model.exit_logits(L - 1, h).argmax(-1)
        return h.float(), greedy

    counts = torch.zeros(emb.shape[0], dtype=torch.long, device=device)
    for _ in range(VOCAB_BATCHES):
        ids = next(stream).to(device)
        counts += torch.bincount(states(ids)[1][ids != info.pad_id], minlength=emb.shape[0])
    k = min(vocab, emb.shape[0])
    chosen = torch.argsort(counts, descending=True)[:k]
    coverage = float(counts[chosen].sum() / counts.sum().clamp(min=1))
    row_of = torch.full((emb.shape[0],), -100, dtype=torch.long, device=device)
    row_of[chosen] = torch.arange(k, device=device)
    log(f"draft head: {k} output tokens hold {coverage:.1%} of the model's greedy tokens")

    head = torch_draft_head(emb, model.model.norm.weight, chosen, width, eps).to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)

    from collections import deque

    recent: deque = deque(maxlen=50)  # (first drafts agreeing, first drafts) of the last steps
    steps, batches, last_log = 0, 0, time.time()
    budget = minutes * 60 - (time.time() - started)
    t0 = time.time()
    while time.time() - t0 < budget:
        ids = next(stream).to(device)
        h, greedy = states(ids)
        T = ids.shape[1]
        valid = ids != info.pad_id  # (B, T)
        state = h[:, :T - UNROLL].reshape(-1, D)  # the true state at t
        loss = torch.zeros((), device=device)
        chain = torch.ones(state.shape[0], dtype=torch.bool, device=device)
        for j in range(1, UNROLL + 1):
            at = slice(j, T - UNROLL + j)  # positions t + j
            token = ids[:, at].reshape(-1)
            target = row_of[greedy[:, at].reshape(-1)]  # the model's token after it, as an output row
            # Decoding drafts after the model's own tokens: learn where the text's token is the model's greedy choice,
            # as EAGLE keeps its drafter's inputs in distribution (on this CPU no better than every position: 18.7%
            # against 20.8% of one-token drafts accepted, docs/code-model.md).
            chain = chain & (ids[:, at] == greedy[:, j - 1:T - UNROLL + j - 1]).reshape(-1)
            mask = valid[:, at].reshape(-1) & (target >= 0) & chain  # ... and the output layer holds the target
            logits, state = head(state, token)
            if not mask.any():
                continue
            loss = loss + F.cross_entropy(logits[mask], target[mask])
            true = h[:, at].reshape(-1, D)[mask]
            unit = true.pow(2).mean(-1, keepdim=True).add(eps).rsqrt()  # the state loss in units of its RMS
            loss = loss + STATE_WEIGHT * F.smooth_l1_loss(state[mask] * unit, true * unit)
            if j == 1:
                with torch.no_grad():
                    right = logits[mask].argmax(-1) == target[mask]
                    recent.append((int(right.sum()), int(mask.sum())))
        batches += 1
        if not loss.requires_grad:  # no position in the batch where the text followed the model's own choice
            continue
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
        if time.time() - last_log > 30:
            log(f"draft head: step {steps}, loss {float(loss.detach()):.3f}, first drafts agree {_share(recent):.1%}")
            last_log = time.time()
    stream.close()  # stops the batch workers
    if not steps:
        raise ValueError(f"no training step fitted in {minutes} minutes ({batches} batches, none where the text "
                         "followed the model's own choice): give it more minutes")
    path = model_dir / DRAFT_HEAD
    tensors = head.tensors()
    write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    stats = {"command": command_line(), "steps": steps, "batches": batches, "batch_size": batch_size, "device": device, "vocab": k,
             "vocab_coverage": round(coverage, 4), "width": width, "unroll": UNROLL,
             "first_draft_agreement_recent": round(_share(recent), 4), "bytes": path.stat().st_size,
             "minutes": round((time.time() - started) / 60, 2)}
    record_entry(model_dir, "draft_head", stats)
    log(f"draft head: {steps} steps, {stats['bytes'] / 1e6:.1f} MB in {path}")
    return stats


def _share(recent) -> float:
    """Agreement of the first drafts over the (agreeing, drafted) counts of recent training steps."""
    seen = sum(n for _, n in recent)
    return sum(a for a, _ in recent) / seen if seen else 0.0


def torch_draft_head(embed, final_norm, vocab, width: int, eps: float):
    """The head as a torch module, for training: ``forward(state (N, D), token (N,))`` -> (logits over the output
    rows (N, K), the predicted next state (N, D)), the computation ``DraftHead.step`` serves. ``embed`` (V, D) and
    ``final_norm`` (D,): the model's (frozen embeddings; the norms start as the final norm); ``vocab`` (K,): the
    output tokens, whose rows start as their embeddings (the tied head's)."""
    import torch
    import torch.nn.functional as F

    from models.architecture import RMSNorm

    class TorchDraftHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            D = embed.shape[1]
            self.embed = embed.detach()  # the model's, frozen: not a parameter of the head
            self.register_buffer("vocab", vocab.detach().clone())
            self.norm_in, self.norm_out = RMSNorm(D, eps), RMSNorm(D, eps)
            with torch.no_grad():
                self.norm_in.weight.copy_(final_norm)
                self.norm_out.weight.copy_(final_norm)
            self.fc1, self.fc2 = torch.nn.Linear(2 * D, width), torch.nn.Linear(width, D)
            torch.nn.init.zeros_(self.fc2.weight)
            torch.nn.init.zeros_(self.fc2.bias)  # starts as "the next state is this one"
            self.out = torch.nn.Parameter(embed[vocab].detach().float().clone())  # (K, D)

        def forward(self, state, token):
            x = torch.cat([self.norm_in(state), self.embed[token].float()], -1)  # (N, 2D)
            nxt = state + self.fc2(F.silu(self.fc1(x)))  # (N, D)
            return self.norm_out(nxt) @ self.out.T, nxt

        def tensors(self) -> dict:
            """What DRAFT_HEAD holds: the weights in fp16, the output tokens' ids."""
            t = {"norm_in": self.norm_in.weight, "norm_out": self.norm_out.weight, "out": self.out,
                 "fc1.weight": self.fc1.weight, "fc1.bias": self.fc1.bias, "fc2.weight": self.fc2.weight,
                 "fc2.bias": self.fc2.bias}
            t = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in t.items()}
            t["vocab"] = self.vocab.to("cpu", torch.int64).contiguous()
            return t

    return TorchDraftHead()
