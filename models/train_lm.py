"""`tact train lm`: train the early-exit code model, its controller, and export it for serving.

LayerSkip-style recipe: layer dropout rising with depth, an early-exit loss on every layer through
the shared LM head (a norm per exit), fill-in-the-middle examples in the SPM layout of `models.fim`.
The Stop&Exit controller is then fitted on the calibration split, which the LM never saw.
Training runs for a wall-clock budget with a time-based cosine schedule, so the same command fits
any machine; `--size` picks the model size (bigger ones for an accelerator).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.architecture import EarlyExitLM, ModelConfig, load_torch_model
from models.corpus import iter_split, read_manifest, vendored_package
from models.draft_head import DRAFT_HEAD
from models.exits import EXIT_CALIBRATION_IDENTITY, EXIT_STRIDE, NEVER_EXITS, controller_labels, kv_fill_map_names, open_exits
from models.fim import SUFFIX_TOKENS, build_prompt
from models.model_dir import (EXIT_HEADS, GRAPHS_INDEX, check_model_dir, command_line, portable_path, read_record,
                              trained_context, write_atomically, write_json_object, write_record)
from models.ngram_drafts import write_ngram_drafts
from models.tokenizer import PAD, TokenizerInfo, load_model_tokenizer, train_tokenizer

SIZES = {
    # name: (hidden, layers, heads, intermediate)
    "tiny": (128, 4, 2, 352),
    "small": (256, 8, 4, 704),
    "medium": (256, 12, 4, 704),  # small, deeper: more exits to skip; fp32 still under 50 MB
    "base": (512, 12, 8, 1408),
    "large": (768, 16, 12, 2048),
}


def size_of(cfg: ModelConfig) -> str:
    """The SIZES name of a model's shape, or "custom" (a resumed directory without tact.json: --size's default,
    "small", was recorded for a model of another shape)."""
    shape = (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size)
    return next((name for name, s in SIZES.items() if s == shape), "custom")


SEQ_LEN = 512  # training window (tokens); `tact train lm --seq-len` for longer prompts at serve time
CONTROLLER_BATCH = 8  # calibration sequences per forward when fitting the controller (its features stay in memory)


class TrainingInputError(ValueError):
    """A training option the data or the resumed model cannot honour; the CLI prints it and exits 2."""


def check_corpus(corpus_dir: Path, *names: str) -> None:
    """TrainingInputError naming the fix, before any work, when ``corpus_dir`` lacks files `tact train corpus`
    writes (``names``: manifest.json, the splits' train.jsonl, calib.jsonl, ...), or a split named is empty (a
    corpus too small to put a package on that side: training would fail when it first drew from it)."""
    missing = [name for name in names if not (Path(corpus_dir) / name).is_file()]
    if missing:
        raise TrainingInputError(f"{corpus_dir} is not a training corpus (no {', '.join(missing)}): build one with "
                                 f"`tact train corpus --out {corpus_dir}` or pass --corpus DIR")
    empty = [name.removesuffix(".jsonl") for name in names
             if name.endswith(".jsonl") and not (Path(corpus_dir) / name).stat().st_size]
    if empty:
        raise TrainingInputError(f"the {' and '.join(empty)} split of {corpus_dir} is empty (too small a corpus): "
                                 f"rebuild it bigger, `tact train corpus --out {corpus_dir} --max-mb N` with a larger "
                                 "N or more --dir")


def check_device(device: str) -> None:
    """TrainingInputError, before any work, when torch cannot use ``device`` (cpu, cuda, cuda:N, mps) here."""
    kind, _, index = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise TrainingInputError(f"--device {device}: no CUDA device is available here (torch "
                                     f"{torch.__version__}): use --device cpu")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise TrainingInputError(f"--device {device}: this machine has {count} CUDA device"
                                     f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1})")
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise TrainingInputError("--device mps: MPS is not available here: use --device cpu")
    elif kind not in ("cpu", "cuda", "mps"):
        raise TrainingInputError(f"--device {device}: unknown device (known: cpu, cuda, cuda:N, mps)")


class ExampleSampler:
    """Draws training sequences from corpus files: half plain continuation, half SPM fill-in-the-middle."""

    def __init__(self, texts: list[str], info: TokenizerInfo, seq_len: int, seed: int, fim_rate: float = 0.5):
        if info.pad_id is None:  # batches are padded with it: a plain Llama tokenizer failed at the first batch
            raise TrainingInputError(f"the tokenizer has no {PAD} token to pad batches with: train on a model "
                                     "directory `tact train lm` wrote")
        self.texts = texts
        weights = np.array([len(t) for t in texts], dtype=np.float64)
        self.cum = np.cumsum(weights / weights.sum())
        self.info = info
        self.seq_len = seq_len
        self.seed = seed
        self.rng = random.Random(seed)
        self.fim_rate = fim_rate

    def _window(self) -> str:
        text = self.texts[int(np.searchsorted(self.cum, self.rng.random()))]
        span = self.seq_len * 4
        if len(text) <= span:
            return text
        start = self.rng.randrange(0, len(text) - span)
        start = text.find("\n", start) + 1 or start
        return text[start:start + span]

    def _fim_pieces(self, window: str) -> tuple[str, str, str]:
        """prefix, middle, suffix: the middle starts anywhere (often mid-word) and runs to the end of
        its line or a few lines on, like a completion request."""
        cut = self.rng.randrange(0, max(1, len(window) - 1))
        eol = window.find("\n", cut)
        eol = len(window) if eol < 0 else eol
        end = eol
        if self.rng.random() < 0.4:
            for _ in range(self.rng.randint(1, 6)):
                nxt = window.find("\n", end + 1)
                end = len(window) if nxt < 0 else nxt
        elif self.rng.random() < 0.3 and eol > cut:
            end = self.rng.randrange(cut, eol + 1)
        return window[:cut], window[cut:end], window[end:]

    def batch(self, batch_size: int) -> torch.Tensor:
        """(B, seq_len) token ids, padded with PAD."""
        return torch.from_numpy(self.batch_array(batch_size))

    def batch_array(self, batch_size: int) -> np.ndarray:
        """(B, seq_len) int64 token ids, padded with PAD; numpy, so that a forked worker never touches torch."""
        info, L = self.info, self.seq_len
        rows = []
        for _ in range(batch_size):
            window = self._window()
            if info.has_fim and self.rng.random() < self.fim_rate:
                prefix, middle, suffix = self._fim_pieces(window)
                p, m, s = (info.encode(x) for x in (prefix, middle, suffix))
                m = m + [info.eos_id]
                prompt = build_prompt(info, p, s[:SUFFIX_TOKENS], L, reserve=min(len(m), L // 2))
                ids = (prompt + m)[:L]
            else:
                ids = info.encode(window)[:L]
            rows.append(ids + [info.pad_id] * (L - len(ids)))
        return np.array(rows, dtype=np.int64)


def autocast(device: str):
    """bf16 autocast on an accelerator (the weights stay fp32); nothing on a CPU."""
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _fill_batches(sampler: ExampleSampler, worker: int, batch_size: int, out) -> None:
    """A batch worker's loop: its own seeded stream (the sampler's seed and the worker's number)."""
    sampler.rng = random.Random(f"{sampler.seed}/{worker}")
    while True:
        out.put(sampler.batch_array(batch_size))


def batch_stream(sampler: ExampleSampler, batch_size: int, workers: int = 0, depth: int = 16):
    """(B, seq_len) batches without end. With ``workers``, forked processes build them beside the training loop, so an
    accelerator does not wait on tokenization (one Python thread made about 70 ms a batch of 64 on a 2-core CPU,
    throwaway timing, and held the GIL the loop needs); each worker draws its own seeded stream, and the order they
    arrive in is not deterministic. With 0, this process builds them in turn (deterministic)."""
    if workers <= 0:
        while True:
            yield sampler.batch(batch_size)
    ctx = multiprocessing.get_context("fork")  # the texts are shared copy-on-write, not pickled per worker
    q = ctx.Queue(maxsize=depth)
    procs = [ctx.Process(target=_fill_batches, args=(sampler, k, batch_size, q), daemon=True) for k in range(workers)]
    for proc in procs:
        proc.start()
    try:
        while True:
            yield torch.from_numpy(q.get())
    finally:
        for proc in procs:
            proc.terminate()


def loader_workers(device: str, requested: int | None = None) -> int:
    """Batch workers for ``device``: ``requested`` when given, else none on a CPU (they would take the cores the model
    trains on) and up to 8 on an accelerator."""
    if requested is not None:
        return requested
    return 0 if device == "cpu" else max(1, min(8, (os.cpu_count() or 2) - 2))


def mean_losses(losses: list[torch.Tensor], last: int) -> list[float]:
    """The mean of the last ``last`` per-layer losses (each (L,), from early_exit_loss), read back once."""
    return torch.stack(losses[-last:]).mean(0).tolist()


def early_exit_loss(model: EarlyExitLM, hidden: list[torch.Tensor], ids: torch.Tensor, pad_id: int,
                    exit_sample: float, exit_weight: float,
                    targets: torch.Tensor | None = None,
                    weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Final-layer cross entropy on every token plus each early exit's on a random share of positions.

    Sampling positions keeps the shared (V x D) head from dominating the step on a CPU.
    ``targets`` (B, S-1), PAD where nothing is learned, defaults to the next token everywhere;
    ``weights`` (B, S-1), when given, weigh each position's CE in the loss.
    Returns the loss and the per-layer plain mean CE (L,), detached on the model's device (for logging: reading it
    each step would make the host wait for the accelerator).
    """
    L = model.cfg.num_hidden_layers
    targets = ids[:, 1:] if targets is None else targets
    valid = targets != pad_id
    final = model.exit_logits(L - 1, hidden[-1][:, :-1])
    ce_final = F.cross_entropy(final[valid], targets[valid], reduction="none")
    w = weights[valid] if weights is not None else None
    loss = ce_final.mean() if w is None else (ce_final * w).sum() / w.sum()
    exit_ce = []  # each early exit's plain mean CE, for logging
    pos = torch.nonzero(valid)
    k = max(1, int(len(pos) * exit_sample))
    pick = pos[torch.randperm(len(pos), device=pos.device)[:k]]
    for layer in range(L - 1):
        h = hidden[layer][:, :-1][pick[:, 0], pick[:, 1]]
        ce_pos = F.cross_entropy(model.exit_logits(layer, h), targets[pick[:, 0], pick[:, 1]], reduction="none")
        wp = weights[pick[:, 0], pick[:, 1]] if weights is not None else None
        ce = ce_pos.mean() if wp is None else (ce_pos * wp).sum() / wp.sum()
        # Deeper exits weigh more: they must be good; the earliest only need to be right on easy tokens.
        loss = loss + exit_weight * (layer + 1) / L * ce
        exit_ce.append(ce_pos.detach().mean())
    return loss, torch.stack(exit_ce + [ce_final.detach().mean()]).float()


def load_texts(corpus_dir: Path, split: str, limit_chars: int | None = None) -> list[str]:
    """The texts of a corpus split, less vendored copies: a corpus built before `tact train corpus` left them out
    holds them under their host's name (pip/_vendor/pygments, a held-out package, as pip in train)."""
    texts, total = [], 0
    for rec in iter_split(corpus_dir, split):
        if vendored_package(rec.get("path", "")) is not None:
            continue
        texts.append(rec["text"])
        total += len(rec["text"])
        if limit_chars and total >= limit_chars:
            break
    return texts


@torch.no_grad()
def _exit_top2(model: EarlyExitLM, layer: int, h: torch.Tensor):
    """The two best log-probabilities of exit ``layer`` on states h (N, D), and their tokens: (N, 2) each."""
    return torch.log_softmax(model.exit_logits(layer, h).float(), -1).topk(2, dim=-1)


@torch.no_grad()
def fit_controller(model: EarlyExitLM, sampler: ExampleSampler, batches: int, batch_size: int, pad_id: int, log,
                   epochs: int = 8, only: str | None = None, exit_stride: int = EXIT_STRIDE) -> dict:
    """Fit each layer's 3-way Stop&Exit classifier on data the LM never trained on, then its stop and exit
    calibrations (``fit_stop_calibration``, ``fit_head_calibration``) and the open exits' learned KV fill
    (``fit_kv_fill_maps``), and the open exits' harm calibration (P(harm): this exit disagrees with the final layer
    and the final layer is right; models.exits.exit_score). ``only`` ('stop' or 'exit') keeps the classifiers and
    the other calibration, and fits that calibration alone (with 'exit', the KV fill and the harm calibration of the
    exits it opens too); 'harm' fits only the harm calibration of the open exits; 'kv_fill' fits only the KV
    fill of the exits the stored exit calibration opens. Closed exits (models.exits.open_exits, every
    ``exit_stride``-th of those that agree often enough stays open) get NEVER_EXITS.

    Targets (models.exits.controller_labels): exit where this layer already agrees with the final
    layer; stop where the final layer's prediction is wrong. Returns per-layer statistics.
    """
    model.eval()
    dev = next(model.parameters()).device
    L = model.cfg.num_hidden_layers
    feats = [[] for _ in range(L)]
    labels = [[] for _ in range(L)]
    top_logprobs = [[] for _ in range(L)]  # log-probability of each exit's top token (both calibrations)
    margins = [[] for _ in range(L)]  # its gap to the second best (exit calibration)
    agree = np.zeros(L)
    correct = np.zeros(L)
    n = 0
    for _ in range(batches):
        ids = sampler.batch(batch_size).to(dev)
        hidden = model(ids)
        targets = ids[:, 1:]
        valid = targets != pad_id
        tgt = targets[valid].cpu().numpy()
        n += len(tgt)
        if only == "kv_fill":  # the maps read the layers' outputs alone: no exit head needs to run
            for layer in range(L):
                feats[layer].append(hidden[layer][:, :-1][valid].clone())
            continue
        # the last layer's prediction is made as every exit's (an argmax of its raw logits broke near-ties otherwise
        # than topk of the log-probabilities: a tiny model's last exit agreed with itself on 0.9998 of tokens), once
        last_top2 = _exit_top2(model, L - 1, hidden[L - 1][:, :-1][valid])
        final_pred = last_top2.indices[:, 0].cpu().numpy()
        for layer in range(L):
            h = hidden[layer][:, :-1][valid]
            top2 = last_top2 if layer == L - 1 else _exit_top2(model, layer, h)
            pred = top2.indices[:, 0].cpu().numpy()
            top_logprobs[layer].append(top2.values[:, 0].cpu().numpy())
            margins[layer].append((top2.values[:, 0] - top2.values[:, 1]).cpu().numpy())
            feats[layer].append(h.clone())
            labels[layer].append(torch.from_numpy(controller_labels(pred, final_pred, tgt)).to(dev))
            agree[layer] += (pred == final_pred).sum()
            correct[layer] += (pred == tgt).sum()
    feats = [torch.cat(f) for f in feats]  # per layer (N, D): the output of that layer on every calibration token
    stats = {"tokens": n, "fit_accuracy": []}
    if only != "kv_fill":  # no head ran otherwise
        stats.update(top1_accuracy=(correct / n).round(4).tolist(), agrees_with_final=(agree / n).round(4).tolist())
    exits_open = open_exits((agree / n).tolist(), exit_stride)
    if only in (None, "exit"):
        stats["exit_stride"] = exit_stride
    with torch.enable_grad():
        for layer in range(L if only != "kv_fill" else 0):
            x = feats[layer]
            y = torch.cat(labels[layer])  # (N, 2)
            head = model.controller[layer]
            norm = model.exit_norm(layer)
            if only is None:
                for m in head:
                    if hasattr(m, "reset_parameters"):
                        m.reset_parameters()
            opt = torch.optim.Adam(head.parameters(), lr=3e-3)
            xn = norm(x).detach()
            for _ in range(0 if only else epochs):
                for idx in torch.randperm(len(y), device=dev).split(1024):
                    loss = F.binary_cross_entropy_with_logits(head(xn[idx]), y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            with torch.no_grad():
                logits = head(xn).float()
            acc = ((logits > 0).float() == y).float().mean(0).cpu().tolist()  # [exit, stop]
            stats["fit_accuracy"].append([round(a, 4) for a in acc])
            top_lp = np.concatenate(top_logprobs[layer])
            # what a head calibration reads (exit and harm alike): exit logit, top log-probability, margin
            head_features = (logits[:, 0].cpu().numpy(), top_lp, np.concatenate(margins[layer]))
            if only not in ("exit", "harm"):
                cal = fit_stop_calibration(logits[:, 1].cpu().numpy(), top_lp, y[:, 1].float().cpu().numpy())
                model.stop_calibration[layer] = torch.tensor(cal, device=model.stop_calibration.device)
            if only in (None, "exit") and layer < L - 1:  # the last layer never exits early
                agrees = y[:, 0].float().cpu().numpy()
                cal = (fit_head_calibration(*head_features, agrees) if exits_open[layer]
                       else np.array(NEVER_EXITS, np.float32))
                model.exit_calibration[layer] = torch.tensor(cal, device=model.exit_calibration.device)
            opened = layer < L - 1 and math.isfinite(float(model.exit_calibration[layer, 3]))
            if only in (None, "exit", "harm") and opened:  # the harm rule's P(harm), same features as P(exit)
                harm = ((1 - y[:, 0]) * (1 - y[:, 1])).float().cpu().numpy()  # disagrees, and the last layer is right
                # from zero: Newton steps from the exit calibration's start (the hidden-state logit at weight 1)
                # diverged on this rare label
                cal = fit_head_calibration(*head_features, harm, start=(0.0, 0.0, 0.0, 0.0))
                model.harm_calibration[layer] = torch.tensor(cal, device=model.harm_calibration.device)
                stats.setdefault("harm_calibration", {})[str(layer)] = [round(float(c), 4) for c in cal]
            stop_cal, exit_cal = model.stop_calibration[layer].tolist(), model.exit_calibration[layer].tolist()
            stats.setdefault("stop_calibration", []).append([round(float(c), 4) for c in stop_cal])
            stats.setdefault("exit_calibration", []).append(  # "never": this exit lets no token leave
                [round(float(c), 4) for c in exit_cal] if all(map(math.isfinite, exit_cal)) else "never")
            log(f"controller layer {layer}: accuracy exit {acc[0]:.3f} stop {acc[1]:.3f}; "
                f"stop calibration {np.round(stop_cal, 3).tolist()}; exit calibration {np.round(exit_cal, 3).tolist()}")
    if only in (None, "exit", "kv_fill"):  # the exits that may let a token leave, as the exit calibration now stands
        exits = [i for i in range(L - 1) if math.isfinite(float(model.exit_calibration[i, 3]))]
        model.kv_fill_maps, stats["kv_fill"] = fit_kv_fill_maps(feats, exits)
        log(f"KV fill maps for exits {exits}: share of the change from the exit state to each later layer's input "
            f"explained on unseen tokens {stats['kv_fill']['explained']}")
    return stats


KV_FILL_RIDGE = 1.0  # on ~80k tokens of 256 features: a guard against collinear directions, no real shrinkage
KV_FILL_TEST_SHARE = 0.2  # the last tokens, which the maps are judged on and not fitted to


@torch.no_grad()
def fit_kv_fill_maps(hidden: list[torch.Tensor], exits: list[int], ridge: float = KV_FILL_RIDGE) -> tuple[dict, dict]:
    """The learned KV fill (models.exits.KV_FILL_MAPS) of each exit in ``exits``: per later layer j >= l + 2,
    ridge least squares of layer j's input (``hidden[j - 1]``) from the exiting state h = ``hidden[l]`` and a bias.
    Fitted as the change from h, so the ridge shrinks toward the unlearned fill (h itself), on the first
    1 - KV_FILL_TEST_SHARE of the tokens. hidden: per layer (N, D), the same N tokens.

    Returns the tensors by name and a record: per exit, for each later layer j >= l + 2, the share of the squared
    change from h to layer j's input that the map explains on the remaining tokens."""
    L, (N, D) = len(hidden), hidden[0].shape
    fit = slice(0, int(N * (1 - KV_FILL_TEST_SHARE)))
    test = slice(fit.stop, N)
    maps, explained = {}, {}
    for exit_layer in exits:
        if exit_layer + 2 >= L:
            continue  # only layer l + 1 is skipped, and its input is h itself
        h = hidden[exit_layer].double().cpu()
        X = torch.cat([h, torch.ones(N, 1, dtype=torch.float64)], 1)  # (N, D + 1)
        penalty = ridge * torch.eye(D + 1, dtype=torch.float64)
        penalty[D, D] = 0.0  # the bias is not shrunk
        gram = X[fit].T @ X[fit] + penalty  # (D + 1, D + 1)
        weights, biases, shares = [], [], []
        for j in range(exit_layer + 2, L):
            change = hidden[j - 1].double().cpu() - h  # (N, D): layer j's input minus the exit state
            coef = torch.linalg.solve(gram, X[fit].T @ change[fit])  # (D + 1, D)
            residual = change[test] - X[test] @ coef
            shares.append(round(float(1 - residual.pow(2).sum() / change[test].pow(2).sum()), 4))
            weights.append(coef[:D] + torch.eye(D, dtype=torch.float64))  # (D, D): x_j = h @ weight + bias
            biases.append(coef[D])
        weight_name, bias_name = kv_fill_map_names(exit_layer)
        maps[weight_name] = torch.stack(weights).float()  # (m, D, D)
        maps[bias_name] = torch.stack(biases).float()  # (m, D)
        explained[str(exit_layer)] = shares
    return maps, {"ridge": ridge, "fit_tokens": fit.stop, "test_tokens": N - fit.stop, "explained": explained}


def fit_logistic(X: np.ndarray, y: np.ndarray, w0: np.ndarray | None = None, iters: int = 25,
                 ridge: float = 1e-3) -> np.ndarray:
    """Weights w of P(y) = sigmoid(X @ w): logistic regression by Newton steps (a few parameters, so exact and
    quick) with a small ridge for stability. X (N, K) holds its own bias column."""
    X = X.astype(np.float64)
    y = y.astype(np.float64)
    w = np.zeros(X.shape[1]) if w0 is None else np.asarray(w0, np.float64).copy()
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (p - y) / len(y) + ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X / len(y) + ridge * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_stop_calibration(stop_logit: np.ndarray, top_logprob: np.ndarray, wrong: np.ndarray, iters: int = 25,
                         ridge: float = 1e-3, use_hidden: bool = False) -> np.ndarray:
    """[a, b, c] of P(wrong) = sigmoid(a * stop_logit + b * top_logprob + c).

    By default a = 0: P(stop) rests on the exit's confidence in its top token alone. The hidden-state
    estimate as a second feature (``use_hidden``) fitted the calibration split better but made Stop worse on
    held-out packages (at threshold 0.9, acceptance of shown suggestions +3% instead of +16%)."""
    cols = [stop_logit] if use_hidden else []
    X = np.stack([*cols, top_logprob, np.ones_like(top_logprob)], axis=1)  # (N, 2 or 3)
    w = fit_logistic(X, wrong, np.array([1.0, 0.0, 0.0]) if use_hidden else None, iters, ridge)
    return (w if use_hidden else np.concatenate([[0.0], w])).astype(np.float32)


def fit_head_calibration(exit_logit: np.ndarray, top_logprob: np.ndarray, margin: np.ndarray, label: np.ndarray,
                         iters: int = 25, ridge: float = 1e-3, start: tuple = EXIT_CALIBRATION_IDENTITY) -> np.ndarray:
    """[a, b, c, d] of P(label) = sigmoid(a * exit_logit + b * top_logprob + c * margin + d), read at serving by
    models.exits.head_calibrated: the exit calibration (label: this exit agrees with the final one) and the harm
    calibration (label: it disagrees and the final one is right). On held-out code the margin between the top two
    tokens is what separates right exits from wrong ones; the hidden-state logit and the top log-probability
    alone separate them far worse."""
    X = np.stack([exit_logit, top_logprob, margin, np.ones_like(margin)], axis=1)  # (N, 4)
    return fit_logistic(X, label, np.array(start, np.float64), iters, ridge).astype(np.float32)


def train_controller(model_dir: Path, corpus_dir: Path, *, batches: int = 24, batch_size: int = 8, seed: int = 1,
                     only: str | None = None, exit_stride: int | None = None, log=print) -> dict:
    """Refit the Stop&Exit controller of an existing model directory (`tact train controller [--stop-only |
    --exit-only | --harm-only | --kv-fill-only] [--exit-stride N]`; no stride: EXIT_STRIDE). A directory with ONNX graphs gets
    them again: the kv_fill graphs read the learned KV fill maps where they sit in exit_heads.safetensors."""
    from safetensors.torch import save_file

    if exit_stride is not None and only not in (None, "exit"):  # the other refits read the stored exit calibration
        raise TrainingInputError(f"--exit-stride applies to a whole fit or --exit-only, not --{only.replace('_', '-')}-only")
    check_model_dir(model_dir, need_onnx=False)
    check_corpus(corpus_dir, "calib.jsonl")
    torch.manual_seed(seed)  # the heads' fresh start and the batches' order: two runs of one seed fit alike
    model = load_torch_model(model_dir)
    info = load_model_tokenizer(model_dir)
    record = read_record(model_dir)
    window = trained_context(model.cfg.to_hf(), record)  # the controller sees what serving will
    calib = ExampleSampler(load_texts(corpus_dir, "calib"), info, window, seed)
    stats = fit_controller(model, calib, batches, batch_size, info.pad_id, log, only=only,
                           exit_stride=EXIT_STRIDE if exit_stride is None else exit_stride)
    exit_heads = model.exit_state_dict()
    write_atomically(model_dir / EXIT_HEADS, lambda tmp: save_file(exit_heads, str(tmp), metadata={"format": "pt"}))
    if only:  # the classifiers, their statistics and what else was not refitted stay as they were
        key = {"stop": "stop_calibration", "exit": "exit_calibration", "kv_fill": "kv_fill", "harm": "harm_calibration"}[only]
        # the exit refit refits P(harm) too, for the exits it opens (none open: none to record)
        refitted = [key] + (["harm_calibration"] if only == "exit" and "harm_calibration" in stats else [])
        controller = record.setdefault("controller", {})
        if only == "exit":
            controller.pop("harm_calibration", None)
            controller.pop("harm_calibration_command", None)
        controller.update({k: stats[k] for k in (*refitted, "exit_stride", "kv_fill") if k in stats})
        for k in refitted:
            controller[f"{k}_command"] = command_line()
    else:
        record["controller"] = {**stats, "command": command_line()}
    write_record(model_dir, record)
    if (model_dir / GRAPHS_INDEX).is_file():
        try:
            from models.export import export_model_dir
        except ImportError:  # a training machine without onnx
            log(f"the ONNX graphs of {model_dir} no longer match its exit heads: run `tact export {model_dir}`")
        else:
            export_model_dir(model_dir)
    return stats


def save_model_dir(model: EarlyExitLM, tok, out: Path, record: dict) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    sd = model.hf_state_dict()
    sd.pop("lm_head.weight")  # tied to the embeddings (tie_word_embeddings in config.json)
    exit_heads = model.exit_state_dict()
    # each file whole: a run stopped while saving over an earlier model leaves that file of it as it was
    write_atomically(out / "model.safetensors", lambda tmp: save_file(sd, str(tmp), metadata={"format": "pt"}))
    write_atomically(out / EXIT_HEADS, lambda tmp: save_file(exit_heads, str(tmp), metadata={"format": "pt"}))
    write_json_object(out / "config.json", model.cfg.to_hf())
    write_atomically(out / "tokenizer.json", lambda tmp: tok.save(str(tmp)))
    stale = out / DRAFT_HEAD  # learned on the trunk these weights replace: it would draft for another model
    if stale.exists():
        stale.unlink()
        record.pop("draft_head", None)
    write_record(out, record)


def train_lm(corpus_dir: Path, out: Path, *, size: str = "small", minutes: float = 60.0, batch_size: int = 8,
             lr: float = 3e-3, layer_dropout: float = 0.1, exit_sample: float = 0.125, exit_weight: float = 0.5,
             vocab_size: int = 8192, seed: int = 0, threads: int | None = None, device: str = "cpu",
             controller_batches: int = 24, resume: Path | None = None, seq_len: int | None = None,
             ngram_model_tokens: int = 1_000_000, workers: int | None = None, log=print) -> dict:
    """Train (or, with ``resume``, continue) the early-exit LM on ``seq_len``-token windows (default: the resumed
    model's, else SEQ_LEN), fit its controller and save a model directory. The record's ``seq_len`` is the prompt
    budget serving uses (trained_context). ``minutes`` bounds the steps (0.9 of it), the controller and the save;
    the n-gram table comes after it (on the H200, 30M tokens: 1.4 minutes more), and export after that."""
    started = time.time()
    if seq_len is not None and seq_len < 16:
        raise TrainingInputError(f"--seq-len {seq_len} is too short to train on (16 tokens at least)")
    check_corpus(corpus_dir, "manifest.json", "train.jsonl", "calib.jsonl")
    check_device(device)
    if resume is not None:
        check_model_dir(resume, need_onnx=False)
    torch.manual_seed(seed)  # again below for a continued run, once its steps are known
    if threads:
        torch.set_num_threads(threads)
    manifest = read_manifest(corpus_dir)
    texts = load_texts(corpus_dir, "train")
    calib_texts = load_texts(corpus_dir, "calib")  # read now: a damaged split found after the steps lost them all
    vendored = manifest["splits"]["train"].get("files", len(texts)) - len(texts)
    log(f"corpus: {len(texts)} training files, {sum(map(len, texts)) / 1e6:.1f}M chars"
        + (f" ({vendored} vendored copies left out)" if vendored > 0 else ""))
    tok_path = (resume or out) / "tokenizer.json"
    if tok_path.exists():
        tok = load_model_tokenizer(resume or out).tok
    else:
        rng = random.Random(seed)
        sample = rng.sample(texts, k=len(texts))
        budget, chosen = 25_000_000, []
        for t in sample:
            chosen.append(t)
            budget -= len(t)
            if budget <= 0:
                break
        t0 = time.time()
        tok = train_tokenizer(chosen, vocab_size=vocab_size)
        log(f"tokenizer: {tok.get_vocab_size()} tokens in {time.time() - t0:.0f}s")
    info = TokenizerInfo(tok)
    previous = {}
    if resume is not None:  # continue from an earlier run: same tokenizer, same size
        model = load_torch_model(resume)
        resumed = read_record(resume)
        previous = resumed.get("training", {})
        size = resumed.get("size") or size_of(model.cfg)  # the model's own size, whatever --size says
        seq_len = seq_len or trained_context(model.cfg.to_hf(), resumed)
        log(f"resuming from {resume} ({previous.get('steps', '?')} steps, {previous.get('tokens', 0) / 1e6:.2f}M tokens)")
    else:
        seq_len = seq_len or SEQ_LEN
        hidden, layers, heads, inter = SIZES[size]
        model = EarlyExitLM(ModelConfig(
            vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=seq_len * 2,
            bos_token_id=info.eos_id, eos_token_id=info.eos_id))
    if seq_len > model.cfg.max_position_embeddings:
        raise TrainingInputError(f"--seq-len {seq_len} is longer than the {model.cfg.max_position_embeddings} "
                                 f"positions {resume} was built for: choose at most that many")
    model = model.to(device)
    log(f"model: {size}, {model.num_parameters() / 1e6:.2f}M parameters, {model.cfg.num_hidden_layers} layers")
    # A continued run draws new examples: seeded by --seed alone it would read the stream the run it continues read
    stream_seed = seed + previous.get("steps", 0)
    if previous:
        torch.manual_seed(stream_seed)  # layer dropout and exit positions: not the same draws either
    sampler = ExampleSampler(texts, info, seq_len, stream_seed)
    workers = loader_workers(device, workers)
    stream = batch_stream(sampler, batch_size, workers)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    budget_s = minutes * 60 * 0.9  # the rest: controller, saving, export
    warmup = 100
    step, tokens, losses = 0, 0, []
    train_start = time.time()
    last_log = train_start
    model.train()
    while True:
        frac = (time.time() - train_start) / budget_s
        if frac >= 1:
            break
        lr_now = lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr_now
        cpu_ids = next(stream)
        tokens += int((cpu_ids != info.pad_id).sum())
        ids = cpu_ids.to(device, non_blocking=True)
        with autocast(device):
            hidden_states = model(ids, layer_dropout=layer_dropout)
            loss, per_layer = early_exit_loss(model, hidden_states, ids, info.pad_id, exit_sample, exit_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(per_layer)
        if time.time() - last_log > 60:
            last_log = time.time()
            recent = mean_losses(losses, 50)
            log(f"step {step} {frac * 100:.0f}% lr {lr_now:.2e} tokens {tokens / 1e6:.2f}M "
                f"final CE {recent[-1]:.3f} exits {' '.join(f'{x:.2f}' for x in recent[:-1])}")
    stream.close()  # stops the batch workers
    if not step:
        raise TrainingInputError(f"no training step fitted in --minutes {minutes:g} (0.9 of it for the steps): give it "
                                 "more minutes")
    train_seconds = time.time() - train_start
    final_losses = [round(x, 4) for x in mean_losses(losses, 100)]
    log(f"trained {step} steps, {tokens / 1e6:.2f}M tokens in {train_seconds / 60:.1f} min; final CE per exit {final_losses}")
    calib = ExampleSampler(calib_texts, info, seq_len, seed + 1)
    controller_stats = fit_controller(model, calib, controller_batches, CONTROLLER_BATCH, info.pad_id, log)
    model = model.cpu()
    earlier_runs = previous.get("earlier_runs", []) + ([{
        **{k: v for k, v in previous.items() if k != "earlier_runs"},
        **{k: resumed[k] for k in ("command", "hyperparameters", "data", "note") if k in resumed}}] if previous else [])
    record = {
        "command": command_line(),
        "size": size,
        "parameters": model.num_parameters(),
        "data": {"corpus": portable_path(corpus_dir), "train_files": len(texts), "train_chars": sum(map(len, texts)),
                 "split_rule": manifest.get("split_rule"), "heldout_packages": len(manifest["splits"]["heldout"].get("packages", []))},
        "hyperparameters": {"seq_len": seq_len, "batch_size": batch_size, "lr": lr, "layer_dropout": layer_dropout,
                            "exit_sample": exit_sample, "exit_weight": exit_weight, "fim_rate": 0.5, "seed": seed,
                            "stream_seed": stream_seed,
                            # the loss: the last layer on every token, weight 1; exit l (0-based) of L on a share
                            # exit_sample of the positions, weight exit_weight * (l + 1) / L
                            "exit_loss": "final + sum_l exit_weight * (l + 1) / L * CE_l on exit_sample of positions"},
        "training": {"steps": step + previous.get("steps", 0), "tokens": tokens + previous.get("tokens", 0),
                     "train_minutes_this_run": round(train_seconds / 60, 1),
                     # each earlier run with its command, settings and data, so a continued model says how it was made
                     "earlier_runs": earlier_runs,
                     "train_minutes": round(train_seconds / 60 + sum(  # all runs
                         run.get("train_minutes_this_run", run.get("train_minutes", 0)) for run in earlier_runs), 1),
                     "total_minutes": round((time.time() - started) / 60, 1), "device": device,
                     "threads": torch.get_num_threads(), "loader_workers": workers,
                     "final_cross_entropy_per_exit": final_losses},
        "controller": controller_stats,
        "fim": "spm",
    }
    save_model_dir(model, tok, out, record)
    # the tokenizer's and the weights' own: rebuilt with them
    record["ngram_drafts"] = write_ngram_drafts(out, corpus_dir, model_tokens=ngram_model_tokens, device=device,
                                                threads=threads, batch_size=batch_size, seed=seed, log=log)
    return record
