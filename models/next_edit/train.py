"""`tact train next-edit`: fine-tune the code model into the next-edit model (the CLI then exports it).

Starts from a code model directory (default `models/default`: same tokenizer, same architecture, so
the runtime serves both) and trains it to rewrite the window of `models.next_edit.prompt` from the
edit history. Loss on the rewrite only, at the final layer and (sampled) at every early exit, so the
draft layers stay usable. Real release changes are mixed with the synthetic chains at a fixed share
(they are few and they are what the model is judged on). Wall-clock budget with a cosine schedule,
like `tact train lm`.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch

from models.architecture import load_torch_model
from models.next_edit.examples import Example, read_jsonl
from models.next_edit.prompt import PROMPT_FORMATS
from models.tokenizer import TokenizerInfo, load_tokenizer
from models.model_dir import check_model_dir, command_line, portable_path, read_record
from models.train_lm import TrainingInputError, autocast, early_exit_loss, mean_losses, save_model_dir

MAX_TOKENS = 1024
REWRITE_TOKENS = 384  # a rewrite longer than this is not taught (nor served)


Row = tuple[list[int], int, tuple[int, int]]  # ids, where the rewrite starts, the edit's tokens [lo, hi)


def encode_example(ex: Example, info: TokenizerInfo, line: int | None = None, prompt_format: str = "rewrite") -> Row | None:
    """(ids, where the output starts, the token span of what the output changes) for one example with the
    window around ``line`` (default: the cursor), or None when it cannot be taught in budget. The span is
    the lines a rewrite changes, or the updated block of a ``next_block`` output."""
    fmt = PROMPT_FORMATS[prompt_format]
    prompt, window, _ = fmt.prompt(ex.history, ex.current, ex.cursor_line if line is None else line, ex.path)
    output = fmt.target(window, ex.current, ex.target)
    if output is None:
        return None
    p = info.encode(prompt)
    enc = info.encoding(output)
    r = enc.ids + [info.eos_id]
    if len(r) > REWRITE_TOKENS or len(p) + len(r) > MAX_TOKENS:
        return None
    lo_char, hi_char = fmt.edit_chars(window, output)
    changed = [i for i, (a, b) in enumerate(enc.offsets) if a < hi_char and b > lo_char]  # tokens touching them
    span = (len(p) + changed[0], len(p) + changed[-1] + 1) if changed else (0, 0)
    return p + r, len(p), span


def load_encoded(path: Path, info: TokenizerInfo, rng: random.Random, limit: int | None = None,
                 prompt_format: str = "rewrite") -> list[Row]:
    """Each example as served (window at the cursor) and with the window where the model is also asked
    at serve time: at the next edit itself (a jump), and, now and then, at a line with nothing to do."""
    out = []
    if not path.exists():
        return out
    for ex in read_jsonl(path, limit):
        lines = [None, ex.target.start_line]
        if rng.random() < 0.3:
            lines.append(rng.randrange(max(1, ex.current.count("\n") + 1)))
        for line in lines:
            enc = encode_example(ex, info, line, prompt_format)
            if enc is not None:
                out.append(enc)
    return out


def make_batch(rows: list[Row], pad_id: int, edit_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids (B, S), targets (B, S-1), weights (B, S-1)): targets are PAD outside the rewrite, so only it
    is learned; the tokens of the lines the rewrite changes weigh ``edit_weight``, the copied ones 1
    (most of a rewrite is a copy, and the edit is what the model is judged on)."""
    S = max(len(row[0]) for row in rows)
    ids_t = torch.full((len(rows), S), pad_id, dtype=torch.long)
    tgt = torch.full((len(rows), S - 1), pad_id, dtype=torch.long)
    weights = torch.zeros((len(rows), S - 1))
    for b, (ids, start, (lo, hi)) in enumerate(rows):
        ids_t[b, :len(ids)] = torch.tensor(ids)
        # position t predicts token t+1: rewrite tokens are ids[start:]
        tgt[b, start - 1:len(ids) - 1] = torch.tensor(ids[start:])
        weights[b, start - 1:len(ids) - 1] = 1.0
        if hi > lo:
            weights[b, lo - 1:hi - 1] = edit_weight
    return ids_t, tgt, weights


def train_next_edit(data_dir: Path, init: Path, out: Path, *, minutes: float = 25.0, batch_tokens: int = 4096,
                    lr: float = 1e-3, real_share: float = 0.35, exit_sample: float = 0.125, exit_weight: float = 0.3,
                    edit_weight: float = 1.0, prompt_format: str = "rewrite",
                    seed: int = 0, threads: int | None = None, device: str = "cpu", log=print) -> dict:
    started = time.time()
    if not Path(data_dir).is_dir():
        raise TrainingInputError(f"next-edit data {data_dir} does not exist: build it with "
                                 f"`tact train next-edit-data --out {data_dir}` or pass --data DIR")
    check_model_dir(init, need_onnx=False)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    if threads:
        torch.set_num_threads(threads)
    tok = load_tokenizer(init / "tokenizer.json")
    info = TokenizerInfo(tok)
    real = load_encoded(data_dir / "real_train.jsonl", info, rng, prompt_format=prompt_format)
    # the programmers' own edits (`tact train next-edit-data --telemetry`), in their order: real changes too
    real += load_encoded(data_dir / "telemetry_train.jsonl", info, rng, prompt_format=prompt_format)
    synthetic = load_encoded(data_dir / "synthetic_train.jsonl", info, rng, prompt_format=prompt_format)
    if not real and not synthetic:
        raise TrainingInputError(f"no next-edit training examples in {data_dir} (run `tact train next-edit-data`)")
    log(f"training rows: {len(real)} real, {len(synthetic)} synthetic (windows at the cursor, the target, elsewhere)")
    model = load_torch_model(init).to(device)
    model.kv_fill_maps = {}  # fitted to the base trunk's hidden states, which fine-tuning moves: the plain fill
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    budget_s = minutes * 60 * 0.92  # the rest: saving and the export
    warmup = 30
    step = tokens = 0
    losses: list[list[float]] = []
    train_start = last_log = time.time()
    model.train()
    while (frac := (time.time() - train_start) / budget_s) < 1:
        lr_now = lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr_now
        rows, used = [], 0
        while used < batch_tokens:
            pool = real if real and (not synthetic or rng.random() < real_share) else synthetic
            row = pool[rng.randrange(len(pool))]
            rows.append(row)
            used += len(row[0])
        ids, targets, weights = make_batch(rows, info.pad_id, edit_weight)
        ids, targets, weights = ids.to(device), targets.to(device), weights.to(device)
        with autocast(device):
            hidden = model(ids, layer_dropout=0.0)
            loss, per_layer = early_exit_loss(model, hidden, ids, info.pad_id, exit_sample, exit_weight, targets=targets,
                                              weights=weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += int((targets != info.pad_id).sum())
        losses.append(per_layer)
        if time.time() - last_log > 60:
            last_log = time.time()
            recent = mean_losses(losses, 20)
            log(f"step {step} {frac * 100:.0f}% lr {lr_now:.2e} rewrite tokens {tokens / 1e6:.2f}M final CE {recent[-1]:.3f}")
    train_seconds = time.time() - train_start
    if step == 0:  # a model of no steps would be the code model it started from, saved as a next-edit model
        raise TrainingInputError(f"no training step fitted in --minutes {minutes:g} (0.92 of it for the steps): give "
                                 "it more time; nothing was written")
    final = [round(x, 4) for x in mean_losses(losses, 50)] if losses else []
    log(f"trained {step} steps in {train_seconds / 60:.1f} min; final CE per exit {final}")
    model = model.cpu().eval()
    base = read_record(init)
    record = {
        "command": command_line(),
        "task": "next_edit",
        "prompt_format": prompt_format,
        "size": base.get("size"),
        "parameters": model.num_parameters(),
        "init": {"model": portable_path(init), "training": base.get("training", {})},
        "data": {"dir": portable_path(data_dir), "real_examples": len(real), "synthetic_examples": len(synthetic),
                 "real_share": real_share},
        "hyperparameters": {"batch_tokens": batch_tokens, "lr": lr, "edit_weight": edit_weight, "exit_sample": exit_sample, "exit_weight": exit_weight,
                            "max_tokens": MAX_TOKENS, "rewrite_tokens": REWRITE_TOKENS, "seed": seed},
        "training": {"steps": step, "rewrite_tokens": tokens, "train_minutes": round(train_seconds / 60, 1),
                     "total_minutes": round((time.time() - started) / 60, 1), "device": device,
                     "threads": torch.get_num_threads(), "final_cross_entropy_per_exit": final},
        "controller": {k: v for k, v in (base.get("controller") or {}).items() if k != "kv_fill"} or None,
    }
    save_model_dir(model, tok, out, record)
    return record
