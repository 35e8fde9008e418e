"""A model directory on disk: what it must hold, and clear errors when it does not.

Hugging Face layout (`config.json`, `model.safetensors`, `tokenizer.json`) plus Tact's additions:
`exit_heads.safetensors` (exit norms, Stop&Exit controller), `tact.json` (training record) and the
ONNX graphs written by `tact export` (`graphs.json` lists them; they sit beside
`model.safetensors` because their weights are read from it in place, or, for fp16 weights, from their
fp32 copy `onnx_weights.bin`). Only safetensors are read: never pickle.
Serving-safe: numpy and the standard library only.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shlex
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

REQUIRED = ("config.json", "model.safetensors", "tokenizer.json")
CONFIG_SIZES = ("num_hidden_layers", "hidden_size", "num_attention_heads")  # config.json entries serving reads
# Entries serving reads that may be absent or null (a default serves then); given, of these types. A string or a zero
# there failed deep in loading with numpy's words, or loaded and then failed every request (rms_norm_eps, read by the
# controller only, under the dynamic policy; max_position_embeddings, read by attention at the first decode).
OPTIONAL_CONFIG_SIZES = ("num_key_value_heads", "head_dim", "max_position_embeddings")  # positive integers
OPTIONAL_CONFIG_SCALES = ("rms_norm_eps", "rope_theta")  # positive finite numbers
DEFAULT_RMS_NORM_EPS = 1e-6  # a config.json without one (or with null) normalises with this, as transformers' Llama
# The fewest positions a model can serve in: a prompt is at least 8 tokens (models.fim.build_prompt), and the KV cache
# holds the prompt, the suggestion and two more.
MIN_POSITIONS = 16
GRAPHS_INDEX = "graphs.json"
# What the decoder graphs expect of the runtime's KV cache (``models.runtime.KVCache``); graphs.json records it,
# and a runtime refuses graphs written for another layout (re-export them).
KV_CACHE_LAYOUT = "shared-buffer-bnsh"
EXIT_HEAD_GRAPH = "exit_head"  # the exit head's graph name, fp32 and 8-bit alike (its files differ)


def layer_graph_name(layer: int, int8: bool = False) -> str:
    """The graph name `tact export` gives decoder layer ``layer`` (the runtime checks a loaded file holds it)."""
    return f"decoder_layer_{layer}" + (".int8" if int8 else "")


def kv_fill_graph_name(exit_layer: int) -> str:
    """The graph name `tact export` gives exit ``exit_layer``'s KV fill."""
    return f"kv_fill_{exit_layer}"
# fp32 copy of a half-precision model.safetensors that the ONNX graphs read (onnxruntime needs fp32 weights
# here). Derived, so it is not shipped: written by `tact export`, and again at load when missing or stale.
WIDENED_WEIGHTS = "onnx_weights.bin"
EXIT_HEADS = "exit_heads.safetensors"  # exit norms, Stop&Exit controller, learned KV fill maps (models.exits)
SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "mistral")


def sliding_window(cfg: dict, layer: int) -> int | None:
    """How many keys (its own included) decoder layer ``layer`` attends to where config.json gives it sliding-window
    attention, as transformers reads it; None: every earlier key. Mistral: every layer, when ``sliding_window`` is set
    (4096 where absent, transformers' default). Qwen2: only with ``use_sliding_window``, the layers ``layer_types``
    marks "sliding_attention" (without it, those from ``max_window_layers`` on). Llama: none. Where the window was
    ignored, a token past it attended to keys the model never reads together (Mistral 7B v0.1 past 4,096 tokens):
    other logits, without a word."""
    arch = cfg.get("model_type")
    if arch == "qwen2" and cfg.get("use_sliding_window"):
        types = cfg.get("layer_types")
        if isinstance(types, list) and len(types) == cfg["num_hidden_layers"]:
            slides = types[layer] == "sliding_attention"
        else:
            slides = layer >= cfg.get("max_window_layers", 28)
    else:
        slides = arch == "mistral"
    window = cfg.get("sliding_window", 4096) if slides else None
    return window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None


_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64, "I64": np.int64, "U16": np.uint16}
_ITEMSIZE = {k: np.dtype(t).itemsize if t is not None else 2 for k, t in _DTYPES.items()}  # bytes (BF16: 2)


# The fix a message names for a file of the model that is damaged or missing and that no command here rebuilds.
RESTORE = "restore it from where the model came from (re-download or re-train it)"


# How to name another model directory when the one named is none: it depends on who named it. The language server
# takes it from the editor's settings; a command takes it from its --model flag (`ModelDirError.advised`).
SETTING_ADVICE = "set tact.modelPath to a model directory or train one with `tact train lm`"
FLAG_ADVICE = "pass --model DIR with a model directory, or train one with `tact train lm`"
# `tact serve --model DIR` names the model for good: the editor's tact.modelPath cannot replace it. The VS Code
# extension starts the server with its tact.modelPath as --model (so that it loads while the editor starts), and its
# users fix the setting: the advice names both.
SERVE_FLAG_ADVICE = ("set tact.modelPath to a model directory where the editor passes it as --model (VS Code does), "
                     "else restart `tact serve` with --model naming one (it wins over tact.modelPath); or train one "
                     "with `tact train lm`")
SAFETENSORS_FIX = "re-export or re-download the model"


class ModelDirError(Exception):
    """The model directory is missing, incomplete or corrupt; the message names the path and the fix.

    The message is ``problem`` then ``fix``. ``chosen``: the problem is the directory named (there is none, or it is
    no model directory), so the fix is to name another, which only the caller can word: SETTING_ADVICE (the server's)
    unless it gives its own with ``advised``."""

    def __init__(self, problem: str, fix: str = "", *, chosen: bool = False):
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem, self.fix, self.chosen = problem, fix, chosen

    def advised(self, fix: str) -> "ModelDirError":
        """This error with ``fix`` as its advice where the directory named is the problem (``chosen``); else itself.
        Advised once: the advice of the caller nearest the user stays."""
        return ModelDirError(self.problem, fix) if self.chosen else self


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int  # absolute byte offset in the file
    length: int


def read_safetensors_index(path: Path) -> dict[str, TensorEntry]:
    """Tensor locations from a safetensors header, validated against the file size."""
    if path.exists() and not path.is_file():  # a pipe or a device: opened, it was read without end
        raise ModelDirError(f"{path}: cannot read safetensors (not a file)",
                            f"make it a readable file, or {SAFETENSORS_FIX}")
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ModelDirError(f"{path}: not a safetensors file (too short)", SAFETENSORS_FIX)
            (n,) = struct.unpack("<Q", raw)
            size = path.stat().st_size
            if n <= 0 or n > min(size - 8, 100_000_000):
                raise ModelDirError(f"{path}: corrupt safetensors header", SAFETENSORS_FIX)
            header = json.loads(f.read(n))
    except OSError as exc:
        raise ModelDirError(f"{path}: cannot read safetensors ({exc})",
                            f"make it a readable file, or {SAFETENSORS_FIX}") from exc
    except ValueError as exc:  # UnicodeDecodeError too
        raise ModelDirError(f"{path}: corrupt safetensors header ({exc})", SAFETENSORS_FIX) from exc
    if not isinstance(header, dict):
        raise ModelDirError(f"{path}: corrupt safetensors header (not a JSON object); "
                            "re-export or re-download the model")
    entries = {}
    base = 8 + n
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        entry = _tensor_entry(name, meta, base)
        if entry is None:
            raise ModelDirError(f"{path}: corrupt safetensors header (tensor {name}: {meta!r:.200}); "
                                "re-export or re-download the model")
        if entry.offset + entry.length > size:
            raise ModelDirError(f"{path}: truncated (tensor {name} ends past the end of the file); re-export or re-download the model")
        entries[name] = entry
    return entries


def _tensor_entry(name: str, meta, base: int) -> TensorEntry | None:
    """A header entry as a TensorEntry (``base``: where the data starts); None when it is malformed: not a dtype,
    shape and data_offsets, offsets reversed, or a byte length that the shape and dtype do not give."""
    def is_int(x) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    if not isinstance(meta, dict) or not isinstance(meta.get("dtype"), str):
        return None
    shape, offsets = meta.get("shape"), meta.get("data_offsets")
    if not (isinstance(shape, list) and all(map(is_int, shape)) and isinstance(offsets, list) and len(offsets) == 2
            and all(map(is_int, offsets)) and offsets[0] <= offsets[1]):
        return None
    begin, end = offsets
    itemsize = _ITEMSIZE.get(meta["dtype"])
    if itemsize is not None and math.prod(shape) * itemsize != end - begin:  # exact: numpy's int64 wrapped to 0
        return None
    return TensorEntry(name, meta["dtype"], tuple(shape), base + begin, end - begin)


def load_tensors(path: Path, names: list[str] | None = None, prefix_excluded: str | None = None) -> dict[str, np.ndarray]:
    """Numpy arrays from a safetensors file, floats as float32 (bf16 and f16 are widened), integers as stored:
    ``names``, else every tensor whose name does not start with ``prefix_excluded``."""
    index = read_safetensors_index(path)
    out = {}
    if names is None:
        names = [n for n in index if prefix_excluded is None or not n.startswith(prefix_excluded)]
    absent = [name for name in names if name not in index]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise ModelDirError(f"{path} lacks tensor {absent[0]}{more}; it is not this model's file: re-export or "
                            "re-download the model")
    with open(path, "rb") as f:
        for name in names:
            e = index[name]
            f.seek(e.offset)
            buf = f.read(e.length)
            if e.dtype == "BF16":
                arr = (np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif e.dtype in _DTYPES and _DTYPES[e.dtype] is not None:
                arr = np.frombuffer(buf, dtype=_DTYPES[e.dtype])
            else:
                raise ModelDirError(f"{path}: tensor {name} has unsupported dtype {e.dtype}", SAFETENSORS_FIX)
            integer = np.issubdtype(arr.dtype, np.integer)
            out[name] = arr.reshape(e.shape) if integer else arr.reshape(e.shape).astype(np.float32)
    return out


def widened_layout(path: Path) -> dict[str, tuple[tuple[int, ...], int, int]]:
    """Per tensor of the safetensors file at ``path``: (shape, offset, length) in its fp32 copy, in header order."""
    layout, offset = {}, 0
    for name, e in read_safetensors_index(path).items():
        length = int(np.prod(e.shape, dtype=np.int64)) * 4
        layout[name] = (e.shape, offset, length)
        offset += length
    return layout


def write_widened_weights(model_dir: Path, out_dir: Path | None = None) -> dict[str, tuple[tuple[int, ...], int, int]]:
    """Write WIDENED_WEIGHTS for model_dir's model.safetensors into out_dir (default: beside it), through a
    temporary file per process so that a reader never sees half of it; returns its layout."""
    model_dir = Path(model_dir)
    out_dir = Path(out_dir) if out_dir is not None else model_dir
    src = model_dir / "model.safetensors"
    layout = widened_layout(src)
    tensors = load_tensors(src)
    write_derived(src, out_dir / WIDENED_WEIGHTS,
                  (np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes() for name in layout))
    return layout


def write_derived(src: Path, out: Path, chunks: Iterable[bytes]) -> None:
    """Write ``out``, a file derived from ``src``, from ``chunks`` through a temporary file per process (two servers
    starting at once each write their own), so that a reader never sees half of it; then the stamp of the ``src`` it
    was made from beside it (`derived_is_current`)."""
    stamp = source_stamp(src)  # before reading it: a src replaced meanwhile leaves a stamp that is not its own

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)

    write_atomically(out, write)
    _write_stamp(out, stamp)


def source_stamp(src: Path) -> str:
    """What tells one version of the file ``src`` from another: its size, inode, and modification and change times.
    A derived file was taken as current where it was no older than its source: a model copied in with its dates
    kept (`cp -p`, `rsync -a`, `tar x`, `unzip`) is older than the files derived from the one it replaced, and the
    graphs read the previous model's weights beside the new model's embeddings, without a word. The change time is
    the system's own: any write or copy moves it."""
    st = src.stat()
    return f"{st.st_size} {st.st_ino} {st.st_mtime_ns} {st.st_ctime_ns}"


def _stamp_path(out: Path) -> Path:
    return out.with_name(out.name + ".source")


def _write_stamp(out: Path, stamp: str) -> None:
    """Beside ``out``, the `source_stamp` of the file it was made from (taken before that file was read)."""
    write_atomically(_stamp_path(out), lambda tmp: tmp.write_text(stamp, encoding="utf-8"))


def derived_is_current(src: Path, out: Path, size: int) -> bool:
    """Whether ``out`` (``size`` bytes when whole) was derived from ``src`` as it is now (`source_stamp`)."""
    try:
        return out.stat().st_size == size and _stamp_path(out).read_text(encoding="utf-8") == source_stamp(src)
    except (OSError, UnicodeDecodeError):
        return False


def write_atomically(path: Path, write) -> None:
    """Write the file ``path`` by ``write(tmp)`` into a temporary file beside it (one per process: two servers
    starting at once each write their own), then put that in its place: a failure or an interruption midway leaves
    the old file whole (or none), never half of one, and a read-only file is replaced like any other. The temporary
    file is made anew under a name no one can guess: named ``<name>.<pid>.tmp``, a model directory shipped with a
    link of that name had its target overwritten with the derived weights."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666))
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _widened_is_fresh(src: Path, out: Path) -> bool:
    return derived_is_current(src, out, sum(length for _, _, length in widened_layout(src).values()))


def is_bare_file_name(name: object) -> bool:
    """Whether ``name`` names a file in a directory itself, no path: what graphs.json may list. A listed
    "../../.bashrc" was read from outside the model directory and written outside the cache (`graphs_dir`)."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\0" not in name and not (len(name) > 1 and name[1] == ":"))


def cache_root() -> Path:
    """Where Tact keeps derived files it cannot keep beside their source ($TACT_CACHE_DIR, else the user cache;
    as ``lsp_server.config.default_data_dir`` does for data)."""
    override = os.environ.get("TACT_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("tact", appauthor=False))


def graphs_dir(model_dir: Path, index: dict, int8: bool = False) -> Path:
    """The directory to load model_dir's ONNX graphs (``index``: its graphs.json) from. The weight files the graphs
    read that are derived from model.safetensors (WIDENED_WEIGHTS when the graphs read an fp32 copy; with ``int8``,
    the 8-bit weights of models.quantize) are (re)written if missing, of the wrong size or older than
    the model.safetensors there now (`derived_is_current`): beside the weights, or, where the model directory is
    read-only, in a cache directory that
    gets the graphs too. Raises ModelDirError when neither can be written."""
    from models.quantize import INT8_WEIGHTS, int8_is_fresh, write_int8_weights

    model_dir = Path(model_dir)
    src = model_dir / "model.safetensors"
    derived = []  # (file, is fresh, writer)
    if index.get("weights") == WIDENED_WEIGHTS:
        derived.append((WIDENED_WEIGHTS, _widened_is_fresh, write_widened_weights))
    if int8 and index.get("int8"):
        derived.append((INT8_WEIGHTS, int8_is_fresh, write_int8_weights))
    stale = [(name, write) for name, fresh, write in derived if not fresh(src, model_dir / name)]
    if not stale:
        return model_dir
    try:
        for _, write in stale:
            write(model_dir)
        return model_dir
    except OSError as beside:
        cache = cache_root() / "graphs" / f"{model_dir.name}-{fingerprint(model_dir)}"
        try:
            cache.mkdir(parents=True, exist_ok=True)
            graphs = [GRAPHS_INDEX, *index["decoder_layers"], *index["kv_fill"].values(), index["exit_head"]]
            if index.get("kv_fill_maps"):  # the kv_fill graphs read the learned maps where they sit
                graphs.append(EXIT_HEADS)
            if int8 and index.get("int8"):
                graphs += [*index["int8"]["decoder_layers"], index["int8"]["exit_head"]]
            for name in graphs:  # small files: copied each time, so a re-export is never shadowed
                if not (model_dir / name).is_file():  # a device or pipe read without end
                    raise OSError(f"{model_dir / name} is not a file")
                (cache / name).write_bytes((model_dir / name).read_bytes())
            if index.get("weights") == src.name:  # fp32 weights read in place: the graphs here need them here too
                _place_beside(src, cache / src.name)
            for name, fresh, write in derived:
                if not fresh(src, cache / name):
                    write(model_dir, cache)
        except OSError as exc:
            names = " and ".join(str(model_dir / name) for name, _ in stale)
            raise ModelDirError(f"{names} is missing or stale and can be written neither there "
                                f"({beside}) nor under {cache} ({exc}); run `tact export {model_dir}` where the "
                                "directory is writable, or set TACT_CACHE_DIR") from exc
        return cache


def _place_beside(src: Path, out: Path) -> None:
    """``src`` at ``out`` (onnxruntime reads external data only below the graph's directory, symbolic links
    resolved): a hard link where the file system allows one, else a copy with the stamp of what it copied; left
    alone when it is ``src`` (the same file, or a copy of it as it is now)."""
    if out.is_file() and (os.path.samefile(src, out) or derived_is_current(src, out, src.stat().st_size)):
        return
    out.unlink(missing_ok=True)
    try:
        os.link(src, out)
    except OSError:
        stamp = source_stamp(src)
        shutil.copy2(src, out)
        _write_stamp(out, stamp)


def check_served_model(model: str | Path | None) -> None:
    """The model directory a command starts a server with (None: the shipped one), checked before it starts, with
    the command line's advice: the server could only say it has none, and advise the editor's setting."""
    try:
        check_model_dir(Path(model).expanduser() if model else default_model_dir())
    except ModelDirError as exc:
        raise exc.advised(FLAG_ADVICE) from None


def check_model_dir(path: Path, *, need_onnx: bool = True) -> dict:
    """Validate a model directory; returns its config.json. Raises ModelDirError saying what to do."""
    path = Path(path)
    if not path.is_dir():
        problem = f"{path} is a file, not a model directory" if path.exists() else \
            f"model directory {path} does not exist"
        raise ModelDirError(problem, SETTING_ADVICE, chosen=True)
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise ModelDirError(f"model directory {path} lacks {', '.join(missing)} (a model directory holds config.json, "
                            "model.safetensors and tokenizer.json)", SETTING_ADVICE, chosen=True)
    config = read_json_object(path / "config.json", RESTORE)
    problem = _config_problem(config)
    if problem:
        raise ModelDirError(f"{path / 'config.json'} {problem}; {RESTORE}")
    if config.get("model_type") not in SUPPORTED_ARCHITECTURES:
        raise ModelDirError(f"{path}: model_type {config.get('model_type')!r} is not supported "
                            f"(one of {', '.join(SUPPORTED_ARCHITECTURES)})", SETTING_ADVICE, chosen=True)
    read_safetensors_index(path / "model.safetensors")
    if need_onnx and not (path / GRAPHS_INDEX).is_file():
        raise ModelDirError(f"{path} has no ONNX graphs; run `tact export {path}` (needs the [train] extra)")
    return config


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _config_problem(config: dict) -> str:
    """What is wrong with the entries of a config.json that serving reads ("" when nothing), worded to follow its
    path: CONFIG_SIZES must be there; OPTIONAL_CONFIG_SIZES and OPTIONAL_CONFIG_SCALES may be absent or null."""
    for key in CONFIG_SIZES:
        if not _positive_int(config.get(key)):
            return f"has no positive integer {key}"
    for key in OPTIONAL_CONFIG_SIZES:
        value = config.get(key)
        if value is not None and not _positive_int(value):
            return f"has {key} {value!r:.40}, not a positive integer"
    for key in OPTIONAL_CONFIG_SCALES:
        value = config.get(key)
        if value is not None and not _positive_number(value):
            return f"has {key} {value!r:.40}, not a positive number"
    positions = config.get("max_position_embeddings")
    if positions is not None and positions < MIN_POSITIONS:
        return (f"has max_position_embeddings {positions}, fewer than the {MIN_POSITIONS} positions a prompt and its "
                "suggestion need")
    rope = config.get("rope_parameters")
    if config.get("rope_theta") is None and rope is not None:  # then RoPE's base is read from here
        if not isinstance(rope, dict):
            return f"has rope_parameters {rope!r:.40}, not an object"
        theta = rope.get("rope_theta")
        if theta is not None and not _positive_number(theta):
            return f"has rope_parameters.rope_theta {theta!r:.40}, not a positive number"
    return ""


def trained_context(config: dict, record: dict) -> int:
    """The longest sequence (prompt and suggestion) the model has seen in training: the training record's
    ``hyperparameters.seq_len``, else the config's ``max_position_embeddings``. Positions past it are untrained, and
    the default model (trained on 512-token windows, room for 1024 positions) completes worse there
    (docs/code-model.md, issue 3)."""
    positions = int(config.get("max_position_embeddings") or 1024)
    hyperparameters = record.get("hyperparameters") if isinstance(record, dict) else None
    seq_len = hyperparameters.get("seq_len") if isinstance(hyperparameters, dict) else None
    if _positive_int(seq_len) and seq_len < positions:
        return seq_len
    return positions


def safetensors_header(path: Path) -> bytes:
    """The raw header of a safetensors file (its length prefix included): every tensor's name, dtype, shape and
    offsets, without the data."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        n = struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0
        return raw + fh.read(min(n, 100_000_000))


# The files `tact export` builds the graphs from. Their content digests go into graphs.json ("exported_from") and
# the runtime refuses graphs whose sources changed since: flipped bytes in the weights decoded as another model, and
# an edited config.json (rope_theta, the norms' epsilon) went on decoding with the values the graphs were built with.
EXPORT_SOURCES = ("config.json", "model.safetensors", EXIT_HEADS)
EXPORTED_FROM = "exported_from"


def content_digest(path: Path) -> str:
    """A short hash of a file's content (16 hex digits of sha256; 23 MB take about 15 ms). A JSON file's is of its
    parsed value, so that the line endings or spacing a checkout or an editor gives it do not count."""
    import hashlib

    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            data = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
        except ValueError:
            pass  # the bytes, then: a damaged file differs from the one exported
    return hashlib.sha256(data).hexdigest()[:16]


def export_source_digests(model_dir: Path) -> dict[str, str]:
    """``content_digest`` of each of EXPORT_SOURCES that model_dir holds: what graphs.json records at export."""
    return {name: content_digest(model_dir / name) for name in EXPORT_SOURCES if (model_dir / name).is_file()}


def changed_since_export(model_dir: Path, index: dict) -> list[str]:
    """The EXPORT_SOURCES that differ from what ``index`` (graphs.json) recorded at export: changed, removed or
    added since. An index from before digests were recorded names none."""
    recorded = index.get(EXPORTED_FROM)
    if not isinstance(recorded, dict):
        return []
    now = export_source_digests(Path(model_dir))
    return [name for name in EXPORT_SOURCES if recorded.get(name) != now.get(name)]


def header_digest(path: Path) -> str:
    """A short hash of a safetensors file's header and size: two files with the same digest hold the same tensors
    at the same offsets, which is what ONNX graphs that read them in place depend on."""
    import hashlib

    return hashlib.sha256(safetensors_header(path) + str(path.stat().st_size).encode()).hexdigest()[:16]


RECORD = "tact.json"  # a model directory's training record: how it was made, and what serving reads of it


def fingerprint(path: Path) -> str:
    """A short hash that tells two checkpoints apart: config, training record and the safetensors
    headers (which hold every tensor's name, shape and offsets; the data itself is not read)."""
    import hashlib

    path = Path(path)
    h = hashlib.sha256()
    for name in ("config.json", RECORD, "model.safetensors", EXIT_HEADS):
        f = path / name
        if not f.is_file():
            continue
        if name.endswith(".safetensors"):
            h.update(safetensors_header(f) + str(f.stat().st_size).encode())
        else:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def read_record(model_dir: Path) -> dict:
    """A model directory's training record (`tact.json`); {} when it has none. What serving reads of it is checked:
    a ``name`` that is no string, or ``hyperparameters`` that are no object or whose ``seq_len`` (the trained context,
    ``trained_context``) is no positive integer, is a ModelDirError. Read as nothing, a damaged ``seq_len`` silently
    let prompts run past the trained context; a list of hyperparameters failed loading with Python's words."""
    path = Path(model_dir) / RECORD
    if not path.exists():
        return {}
    record = read_json_object(path, RESTORE)
    name, hyperparameters = record.get("name"), record.get("hyperparameters")
    if name is not None and not isinstance(name, str):
        raise ModelDirError(f"{path} has name {name!r:.40}, not a string; {RESTORE}")
    if hyperparameters is not None and not isinstance(hyperparameters, dict):
        raise ModelDirError(f"{path} has hyperparameters {hyperparameters!r:.40}, not an object; {RESTORE}")
    seq_len = (hyperparameters or {}).get("seq_len")
    if seq_len is not None and not _positive_int(seq_len):
        raise ModelDirError(f"{path} has hyperparameters.seq_len {seq_len!r:.40}, not a positive integer; {RESTORE}")
    return record


def read_json_object(path: Path, fix: str) -> dict:
    """A model directory's JSON file that must hold an object (config.json, tact.json, graphs.json); anything
    else is a ModelDirError naming the file and ``fix``."""
    if path.exists() and not path.is_file():  # a pipe (tact.json, read where it exists) held the loader for good
        raise ModelDirError(f"{path} is not a file; {fix}")
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"{path} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(value, dict):
        raise ModelDirError(f"{path} is not a JSON object; {fix}")
    return value


def write_json_object(path: Path, value: dict) -> None:
    """Write a model directory's JSON file whole (the counterpart of ``read_json_object``)."""
    text = json.dumps(value, indent=1)
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_record(model_dir: Path, record: dict) -> None:
    """Write a model directory's training record whole (read it with ``read_record``, change, write back)."""
    write_json_object(Path(model_dir) / RECORD, record)


def record_entry(model_dir: Path, key: str, value) -> None:
    """Set one entry of a model directory's training record (what a later step built, and how), keeping the rest."""
    record = read_record(model_dir)
    record[key] = value
    write_record(model_dir, record)


def command_line() -> str:
    """The command that is running, for a training record: ``tact ...`` when run as the console script or as
    ``python -m lsp_server.cli``, and absolute paths made portable, so that no machine's directories ship."""
    prog = sys.argv[0]
    name = "tact" if prog.endswith("tact") or prog.endswith(os.path.join("lsp_server", "cli.py")) else Path(prog).name

    def portable(arg: str) -> str:
        flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if os.path.isabs(value):
            value = portable_path(Path(value))
        return flag + eq + value

    return " ".join([name] + [shlex.quote(portable(a)) for a in sys.argv[1:]])


def portable_path(path: Path) -> str:
    """A path fit for a shipped record: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def default_model_dir() -> Path:
    return Path(__file__).resolve().parent / "default"


def store_half(model_dir: Path) -> float:
    """Rewrite model.safetensors with its float tensors in fp16; returns the largest change that made. ONNX graphs
    that read its fp32 bytes in place would read other bytes after it: their index (GRAPHS_INDEX) goes, so the
    directory asks for `tact export` instead of failing at load."""
    import safetensors.numpy

    model_dir = Path(model_dir)
    src = model_dir / "model.safetensors"
    tensors = load_tensors(src)
    half = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in tensors.items()}
    change = max((float(np.abs(half[k].astype(np.float32) - v).max()) for k, v in tensors.items() if v.size), default=0.0)

    def write(tmp: Path) -> None:
        safetensors.numpy.save_file(half, str(tmp), metadata={"format": "pt"})
        if _graphs_read_weights_in_place(model_dir):  # the new weights are whole: those graphs go first
            (model_dir / GRAPHS_INDEX).unlink()

    write_atomically(src, write)
    index_path = model_dir / GRAPHS_INDEX
    if index_path.is_file():  # graphs that read a widened copy: the same values, so their record follows the bytes
        index = read_json_object(index_path, RESTORE)
        if isinstance(index.get(EXPORTED_FROM), dict):
            index[EXPORTED_FROM][src.name] = content_digest(src)
            write_json_object(index_path, index)
    return change


def _graphs_read_weights_in_place(model_dir: Path) -> bool:
    """Whether model_dir has graphs (GRAPHS_INDEX) that read model.safetensors's bytes in place, not a widened copy
    (a damaged index counts: it lists nothing that could load)."""
    index = model_dir / GRAPHS_INDEX
    if not index.is_file():
        return False
    try:
        return read_json_object(index, RESTORE).get("weights") != WIDENED_WEIGHTS
    except ModelDirError:
        return True


def rms_norm_eps(cfg: dict) -> float:
    """The norms' epsilon of a config.json: absent or null is the default, in export, runtime and training alike
    (export read a null as NaN: graphs that suggested nothing)."""
    return cfg.get("rms_norm_eps") or DEFAULT_RMS_NORM_EPS
