"""`tact complete FILE:LINE:COL` (or `NOTEBOOK.ipynb:CELL:LINE:COL`): one suggestion without an editor, with the
decisions behind it."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lsp_server.config import DEFAULTS, Settings
from lsp_server.services.completion import CompletionService
from lsp_server.services.notebooks import cells_above
from lsp_server.services.positions import LineIndex, Position
from lsp_server.services.scheduler import CancelToken
from models.model_dir import FLAG_ADVICE, ModelDirError, check_model_dir
from telemetry.text import utf16_len

_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d*))?$")
_NOTEBOOK_LOCATION = re.compile(r"^(?P<file>.+?\.(?i:ipynb)):(?P<cell>\d+):(?P<line>\d+)(?::(?P<col>\d*))?$")
BOM = "\ufeff"

# LSP language identifiers (as editors send them in `textDocument/didOpen`) by file suffix, lowercased: the shaping
# rules know languages by these. A suffix (`js`, `rs`, `pyi`, `PY`) named none they know: `#` read as a comment's start
# hid the brackets after it (`this.#items.push(|)` kept the suggestion's `)`), and a `.pyi` stub was no Python.
_LANGUAGE_BY_SUFFIX = {
    **dict.fromkeys(["py", "pyi", "pyw"], "python"),
    **dict.fromkeys(["js", "mjs", "cjs"], "javascript"),
    "jsx": "javascriptreact",
    **dict.fromkeys(["ts", "mts", "cts"], "typescript"),
    "tsx": "typescriptreact",
    **dict.fromkeys(["c", "h"], "c"),
    **dict.fromkeys(["cc", "cpp", "cxx", "c++", "hh", "hpp", "hxx", "h++", "ino"], "cpp"),
    "m": "objective-c", "mm": "objective-cpp", "cu": "cuda-cpp", "cuh": "cuda-cpp", "cs": "csharp",
    "java": "java", "go": "go", "rs": "rust", "swift": "swift", "kt": "kotlin", "kts": "kotlin",
    "scala": "scala", "sc": "scala", "dart": "dart", "groovy": "groovy", "gradle": "groovy", "jsonc": "jsonc",
    "json": "json", "css": "css", "scss": "scss", "sass": "sass", "less": "less", "proto": "proto", "zig": "zig",
    "d": "d", "sol": "solidity", "glsl": "glsl", "vert": "glsl", "frag": "glsl", "hlsl": "hlsl",
    "lua": "lua", "hs": "haskell", "sql": "sql", "rb": "ruby", "php": "php", "pl": "perl", "pm": "perl",
    "r": "r", **dict.fromkeys(["sh", "bash", "zsh", "ksh"], "shellscript"), "ps1": "powershell",
    "bat": "bat", "cmd": "bat", "yaml": "yaml", "yml": "yaml", "toml": "toml", "ini": "ini",
    "html": "html", "htm": "html", "xml": "xml", "md": "markdown", "tex": "latex", "vb": "vb", "fs": "fsharp",
    "ex": "elixir", "exs": "elixir", "erl": "erlang", "clj": "clojure", "coffee": "coffeescript",
    "mk": "makefile", "dockerfile": "dockerfile",
}
# Files named for their language alone.
_LANGUAGE_BY_NAME = {"makefile": "makefile", "gnumakefile": "makefile", "dockerfile": "dockerfile"}


def language_of(path: Path) -> str:
    """The LSP language identifier of ``path`` by its suffix (any case) or name; else its suffix, lowercased."""
    suffix = path.suffix.lstrip(".").lower()
    return _LANGUAGE_BY_SUFFIX.get(suffix) or _LANGUAGE_BY_NAME.get(path.name.lower(), suffix)


def parse_location(spec: str) -> tuple[Path, int, int | None]:
    """FILE:LINE[:COL], 1-based like compiler messages; without COL (``FILE:LINE`` or ``FILE:LINE:``), the end of
    the line."""
    m = _LOCATION.match(spec)
    if not m or not Path(m["file"]).exists():
        # the file is what comes before a colon: where a shorter part of the spec is a file, what follows it is no
        # LINE[:COL] (s.py:-1:1 blamed a file "s.py:-1" for not existing)
        for i in (i for i, c in enumerate(spec) if c == ":"):
            if Path(spec[:i]).is_file() and (not m or len(spec[:i]) < len(m["file"])):
                raise ValueError(f"{spec!r}: after the file {spec[:i]} comes {spec[i + 1:]!r}, but LINE and COL are "
                                 "whole numbers from 1 (FILE:LINE:COL, FILE:LINE or FILE:LINE:)")
    if not m:
        raise ValueError(f"expected FILE:LINE:COL, FILE:LINE or FILE:LINE: (1-based), got {spec!r}")
    return Path(m["file"]), int(m["line"]), int(m["col"]) if m["col"] else None


def read_source(path: Path) -> str:
    """The file's text as an editor holds it: a UTF-8 byte order mark at its start is no character of the document
    (editors hide it and LSP clients leave it out, so columns do not count it, and the model is not shown it).
    Raises ValueError naming the file and what is wrong."""
    if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO blocks, a device reads without end
        raise ValueError(f"{path} is no regular file (a device or a pipe), not a source file")
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


@dataclass(frozen=True)
class Source:
    """The text a suggestion is made in: a file's, or a notebook cell's with the code of the cells above it."""

    name: str  # how messages name it: the file, or "cell N of the notebook"
    form: str  # how its locations are written, for advice: FILE or NOTEBOOK.ipynb:CELL
    text: str
    language_id: str
    line: int  # 1-based
    col: int | None  # 1-based; None: the end of the line
    earlier_cells: str = ""


def read_notebook(path: Path) -> list[tuple[str, str, str]]:
    """The cells of a Jupyter notebook (nbformat 4) as (cell type, source, language): a cell's language is the one
    its metadata names (VS Code writes `metadata.vscode.languageId` for a cell switched to another language), else the
    notebook's (Python unless its metadata names another). Raises ValueError naming the file and what is wrong."""
    text = read_source(path)
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a notebook: not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ValueError(f"{path} is not a notebook: its JSON nests too deeply") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) and isinstance(notebook, dict) and "worksheets" in notebook:
        raise ValueError(f"{path} is an nbformat {notebook.get('nbformat', 3)} notebook (cells in worksheets); "
                         "only nbformat 4 is read: `jupyter nbconvert --to notebook --nbformat 4` converts it")
    if not isinstance(cells, list):
        raise ValueError(f"{path} is not a notebook: it has no list of cells (nbformat 4)")
    metadata = notebook.get("metadata") if isinstance(notebook.get("metadata"), dict) else {}
    info, kernel = metadata.get("language_info"), metadata.get("kernelspec")
    language = ((info.get("name") if isinstance(info, dict) else None)
                or (kernel.get("language") if isinstance(kernel, dict) else None) or "python")
    read = []
    for cell in cells:
        cell = cell if isinstance(cell, dict) else {}
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(part for part in source if isinstance(part, str))
        vscode = cell.get("metadata", {}).get("vscode") if isinstance(cell.get("metadata"), dict) else None
        own = vscode.get("languageId") if isinstance(vscode, dict) else None
        read.append((str(cell.get("cell_type", "")), source if isinstance(source, str) else "",
                     str(own if isinstance(own, str) and own else language).lower()))
    return read


def read_location(spec: str, prefix_chars: int) -> Source:
    """What FILE:LINE[:COL] or NOTEBOOK.ipynb:CELL:LINE[:COL] points at (CELL 1-based, counting every cell as the
    notebook shows them). Raises ValueError naming what is wrong."""
    m = _NOTEBOOK_LOCATION.match(spec)
    if m is None:
        path, line, col = parse_location(spec)
        if path.suffix.lower() == ".ipynb":
            raise ValueError(f"a notebook's location is NOTEBOOK.ipynb:CELL:LINE[:COL] (1-based), got {spec!r}")
        return Source(str(path), "FILE", read_source(path), language_of(path), line, col)
    path, number = Path(m["file"]), int(m["cell"])
    cells = read_notebook(path)
    if not 1 <= number <= len(cells):
        raise ValueError(f"{path} has {len(cells)} cells (numbered from 1), not {number}")
    kind, text, language = cells[number - 1]
    if kind != "code":
        raise ValueError(f"cell {number} of {path} is a {kind or 'typeless'} cell, not a code cell")
    code = [(lang, t) if k == "code" else None for k, t, lang in cells]  # the cells above of its language
    earlier = cells_above(code, number - 1, language, prefix_chars)
    return Source(f"cell {number} of {path}", "NOTEBOOK.ipynb:CELL", text, language, int(m["line"]),
                  int(m["col"]) if m["col"] else None, earlier)


def complete_once(spec: str, model: str | None, policy: str | None, multiline: bool, out=None) -> int:
    out = out or sys.stdout  # the stdout of the call, not of the import (a test's capture)
    settings = Settings(decoding_policy=policy or DEFAULTS.decoding_policy, multiline=multiline)
    try:
        source = read_location(spec, settings.context_prefix_chars)
    except ValueError as exc:
        print(f"tact complete: error: {exc}", file=sys.stderr)
        return 2
    text, line, col, where = source.text, source.line, source.col, source.name
    index = LineIndex(text)  # lines as the server counts them: a CRLF, a CR alone (a cell's source keeps them) or a LF
    lines = [index.line_text(n) for n in range(index.line_count)]
    if line == 0:
        print(f"tact complete: error: LINE is 1-based: the first line of {where} is 1, not 0", file=sys.stderr)
        return 2
    if not 1 <= line <= len(lines):
        print(f"tact complete: error: {where} has {len(lines)} lines, not {line}", file=sys.stderr)
        return 2
    if col is not None and not 1 <= col <= len(lines[line - 1]) + 1:
        print(f"tact complete: error: line {line} of {where} has {len(lines[line - 1])} characters, so COL lies in 1 to "
              f"{len(lines[line - 1]) + 1}, not {col} ({source.form}:LINE alone means the end of the line)",
              file=sys.stderr)
        return 2
    # COL counts characters; a position counts UTF-16 code units, two for a character past U+FFFF (an emoji)
    character = utf16_len(lines[line - 1] if col is None else lines[line - 1][:col - 1])
    service = CompletionService()
    try:  # checked here too, so that a directory that is none gets the command's advice, not the settings'
        check_model_dir(service.resolve(model or settings.model_path))
    except ModelDirError as exc:
        print(f"tact complete: error: no model: {exc.advised(FLAG_ADVICE)}", file=sys.stderr)
        return 2  # as every other command's bad input
    t0 = time.perf_counter()
    status = service.load(model or settings.model_path, weights=settings.decode_weights)
    if not status.ready:
        print(f"tact complete: error: no model: {status.reason}", file=sys.stderr)
        return 2
    load_ms = (time.perf_counter() - t0) * 1000
    ctx = service.context(index, source.language_id, Position(line - 1, character), settings).with_earlier_cells(
        source.earlier_cells)
    s = service.complete(ctx, settings, CancelToken())
    r = s.result
    print(f"suggestion: {s.text!r}", file=out)
    print(f"latency:    {s.latency_ms:.1f} ms (prefill {r.prefill_ms:.1f} ms for {r.prompt_tokens - r.cached_tokens} tokens, "
          f"decode {r.decode_ms:.1f} ms for {len(r.token_ids)} tokens; model load {load_ms:.0f} ms)", file=out)
    depth = f"{r.layers_per_token:.2f} layers/token" if r.layers_per_token is not None else "no tokens"
    print(f"decisions:  policy {s.policy}, {depth} of {service.runtime.n_layers} layers, "
          f"stop reason {r.stop_reason}, drafted {r.drafted} accepted {r.draft_accepted}", file=out)
    opts = service.decode_options(settings)
    if r.stop_fired:  # what held the next token back, not the largest P(stop) of the tokens that passed
        p_stop, threshold = r.stop_fired
        print(f"controller: Stop held back token {len(r.token_ids) + 1}: P(stop) {p_stop:.3f} reached its "
              f"threshold {threshold:g}", file=out)
    if r.stop_probs:  # a token's threshold: the first one's is tact.stopThreshold, later ones' may differ
        at = max(range(len(r.stop_probs)), key=r.stop_probs.__getitem__)
        print(f"controller: P(stop) of the tokens written at most {r.stop_probs[at]:.3f} (token {at + 1}, under its "
              f"threshold {opts.stop_threshold_at(max(0, at - r.heal_tokens)):g}); "
              f"mean log-prob {sum(r.logprobs) / len(r.logprobs):.3f}", file=out)
    if r.heal:
        print(f"healing:    the prompt left out {r.heal!r}, which the first tokens wrote again "
              f"(tact.tokenHealing {settings.token_healing})", file=out)
    if ctx.earlier_cells:
        kept = s.details.get("earlier_cells_kept_chars", 0)
        print(f"notebook:   the prompt held {kept} of the {len(ctx.earlier_cells)} characters of the code cells above"
              + (" (its token budget cut the rest)" if kept < len(ctx.earlier_cells) else ""), file=out)
    if s.raw != s.text:
        print(f"raw model output before trimming: {s.raw!r}", file=out)
    return 0
