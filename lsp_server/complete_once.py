"""`tact complete FILE:LINE:COL`: one suggestion without an editor, with the decisions behind it."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from lsp_server.config import DEFAULTS, Settings
from lsp_server.services.completion import CompletionService
from lsp_server.services.positions import LineIndex, Position
from lsp_server.services.scheduler import CancelToken
from models.model_dir import FLAG_ADVICE, ModelDirError, check_model_dir

_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d*))?$")
BOM = "\ufeff"


def parse_location(spec: str) -> tuple[Path, int, int | None]:
    """FILE:LINE[:COL], 1-based like compiler messages; without COL (``FILE:LINE`` or ``FILE:LINE:``), the end of
    the line."""
    m = _LOCATION.match(spec)
    if not m:
        raise ValueError(f"expected FILE:LINE:COL, FILE:LINE or FILE:LINE: (1-based), got {spec!r}")
    return Path(m["file"]), int(m["line"]), int(m["col"]) if m["col"] else None


def read_source(path: Path) -> str:
    """The file's text as an editor holds it: a UTF-8 byte order mark at its start is no character of the document
    (editors hide it and LSP clients leave it out, so columns do not count it, and the model is not shown it).
    Raises ValueError naming the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text (a binary file?)") from None
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return text.removeprefix(BOM)


def complete_once(spec: str, model: str | None, policy: str | None, multiline: bool, out=sys.stdout) -> int:
    try:
        path, line, col = parse_location(spec)
        text = read_source(path)
    except ValueError as exc:
        print(f"tact complete: {exc}", file=sys.stderr)
        return 2
    settings = Settings(decoding_policy=policy or DEFAULTS.decoding_policy, multiline=multiline)
    lines = [ln.removesuffix("\r") for ln in text.split("\n")]  # a CRLF's CR is no column either
    if line == 0:
        print(f"tact complete: LINE is 1-based: the first line of {path} is 1, not 0", file=sys.stderr)
        return 2
    if not 1 <= line <= len(lines):
        print(f"tact complete: {path} has {len(lines)} lines, not {line}", file=sys.stderr)
        return 2
    if col is not None and not 1 <= col <= len(lines[line - 1]) + 1:
        print(f"tact complete: line {line} of {path} has {len(lines[line - 1])} characters, so COL lies in 1 to "
              f"{len(lines[line - 1]) + 1}, not {col} (FILE:LINE alone means the end of the line)", file=sys.stderr)
        return 2
    character = len(lines[line - 1]) if col is None else col - 1
    service = CompletionService()
    try:  # checked here too, so that a directory that is none gets the command's advice, not the settings'
        check_model_dir(service.resolve(model or settings.model_path))
    except ModelDirError as exc:
        print(f"tact complete: no model: {exc.advised(FLAG_ADVICE)}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    status = service.load(model or settings.model_path, weights=settings.decode_weights)
    if not status.ready:
        print(f"tact complete: no model: {status.reason}", file=sys.stderr)
        return 1
    load_ms = (time.perf_counter() - t0) * 1000
    index = LineIndex(text)
    ctx = service.context(index, "python" if path.suffix == ".py" else path.suffix.lstrip("."), Position(line - 1, character), settings)
    s = service.complete(ctx, settings, CancelToken())
    r = s.result
    print(f"suggestion: {s.text!r}", file=out)
    print(f"latency:    {s.latency_ms:.1f} ms (prefill {r.prefill_ms:.1f} ms for {r.prompt_tokens - r.cached_tokens} tokens, "
          f"decode {r.decode_ms:.1f} ms for {len(r.token_ids)} tokens; model load {load_ms:.0f} ms)", file=out)
    depth = f"{r.layers_per_token:.2f} layers/token" if r.layers_per_token is not None else "no tokens"
    print(f"decisions:  policy {s.policy}, {depth} of {service.runtime.n_layers} layers, "
          f"stop reason {r.stop_reason}, drafted {r.drafted} accepted {r.draft_accepted}", file=out)
    if r.stop_probs:
        print(f"controller: max P(stop) {max(r.stop_probs):.3f} (threshold {settings.stop_threshold}), "
              f"mean log-prob {sum(r.logprobs) / len(r.logprobs):.3f}", file=out)
    if s.raw != s.text:
        print(f"raw model output before trimming: {s.raw!r}", file=out)
    return 0
