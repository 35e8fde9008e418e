"""Synthetic edit chains from the corpus, found with tree-sitter.

Three kinds, each a chain of one-line edits in file order:

- ``rename``: rename a parameter of a function at its definition, then its other uses in the body;
- ``add_param``: add a parameter to a ``def``, then pass it at the call sites in the same file;
- ``sibling``: apply the same token change to each of a run of sibling one-line statements.

An example's history is the first k edits of a chain and its target the next one. Everything is
deterministic for a given seed.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Iterator

from models.next_edit.examples import Edit, Example, apply_edit, lines_of

KINDS = ("rename", "add_param", "sibling")
MAX_CHAIN = 12
_SKIP_NAMES = {"self", "cls", "True", "False", "None", "print", "len", "str", "int", "super", "isinstance"}
_NEW_PARAMS = ("timeout", "verbose", "context", "options", "strict", "encoding", "callback", "retries")

# (row, [(start byte col, end byte col, replacement), ...]) for one line.
LineChange = tuple[int, list[tuple[int, int, str]]]


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "surrogatepass")


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _is_name_use(node: Any) -> bool:
    """An identifier that is a variable (not ``x.attr``'s attr nor a keyword argument's name)."""
    p = node.parent
    if p is None:
        return True
    if p.type == "attribute" and p.child_by_field_name("attribute") == node:
        return False
    if p.type == "keyword_argument" and p.child_by_field_name("name") == node:
        return False
    return True


def _fresh(name: str, text: str, rng: random.Random) -> str:
    options = [f"{name}_value", f"new_{name}", f"{name}2", f"the_{name}", f"{name}_obj"]
    rng.shuffle(options)
    for cand in options:
        if not re.search(rf"\b{re.escape(cand)}\b", text):
            return cand
    return f"{name}_{rng.randrange(1000, 9999)}"


def _group_rows(spans: list[tuple[int, int, int, str]]) -> list[LineChange]:
    rows: dict[int, list[tuple[int, int, str]]] = {}
    for row, c0, c1, rep in spans:
        rows.setdefault(row, []).append((c0, c1, rep))
    return [(r, sorted(rows[r])) for r in sorted(rows)]


def rename_chains(text: str, tree: Any, rng: random.Random) -> list[list[LineChange]]:
    chains = []
    for fn in (n for n in _walk(tree.root_node) if n.type == "function_definition"):
        params = fn.child_by_field_name("parameters")
        if params is None:
            continue
        names = []
        for p in params.named_children:
            ident = p if p.type == "identifier" else next((c for c in p.named_children if c.type == "identifier"), None)
            if ident is not None and _text(ident) not in _SKIP_NAMES:
                names.append(_text(ident))
        rng.shuffle(names)
        for name in names:
            uses = [n for n in _walk(fn) if n.type == "identifier" and _text(n) == name and _is_name_use(n)]
            if len({u.start_point[0] for u in uses}) < 2 or any(u.start_point[0] != u.end_point[0] for u in uses):
                continue
            new = _fresh(name, text, rng)
            chains.append(_group_rows([(u.start_point[0], u.start_point[1], u.end_point[1], new) for u in uses]))
            break
    return chains


def _insert_into_parens(node: Any, piece: str) -> tuple[int, int, int, str] | None:
    """Insert ``piece`` as the last item of a one-line ``(...)`` node."""
    if node.start_point[0] != node.end_point[0]:
        return None
    inner = _text(node)[1:-1]
    if inner.strip() == "":
        add = piece
    elif inner.rstrip().endswith(","):
        add = " " + piece
    else:
        add = ", " + piece
    row, col = node.end_point[0], node.end_point[1] - 1  # just before ')'
    return (row, col, col, add)


def add_param_chains(text: str, tree: Any, rng: random.Random) -> list[list[LineChange]]:
    calls: dict[str, list[Any]] = {}
    for n in _walk(tree.root_node):
        if n.type != "call":
            continue
        f, args = n.child_by_field_name("function"), n.child_by_field_name("arguments")
        if f is None or args is None or args.type != "argument_list":
            continue
        if f.type == "identifier":
            calls.setdefault(_text(f), []).append(args)
        elif f.type == "attribute" and f.child_by_field_name("attribute") is not None:
            calls.setdefault(_text(f.child_by_field_name("attribute")), []).append(args)
    chains = []
    for fn in (n for n in _walk(tree.root_node) if n.type == "function_definition"):
        name_node, params = fn.child_by_field_name("name"), fn.child_by_field_name("parameters")
        if name_node is None or params is None:
            continue
        name = _text(name_node)
        has_default = any(c.type in ("default_parameter", "typed_default_parameter") for c in params.named_children)
        # a positional argument cannot follow a keyword one: without a default the new one goes in bare, so a call
        # passing keywords is no site (`scale(value=1, factor=2, verbose)` was a target)
        sites = [a for a in calls.get(name, []) if a.start_point[0] != fn.start_point[0]
                 and a.start_point[0] == a.end_point[0] and "*" not in _text(a)
                 and (has_default or not any(c.type == "keyword_argument" for c in a.named_children))]
        ptext = _text(params)
        if not sites or "*" in ptext or "/" in ptext:
            continue
        new = next((p for p in rng.sample(_NEW_PARAMS, len(_NEW_PARAMS))
                    if not re.search(rf"\b{p}\b", text)), None)
        if new is None:
            continue
        first = _insert_into_parens(params, f"{new}=None" if has_default else new)
        if first is None:
            continue
        spans = [first]
        for a in sites[:MAX_CHAIN]:
            s = _insert_into_parens(a, f"{new}={new}" if has_default else new)
            if s is not None:
                spans.append(s)
        if len(spans) < 2:
            continue
        # definition first, then the call sites in file order (one edit per line)
        rest = _group_rows(spans[1:])
        head = _group_rows([first])
        chains.append(head + [rc for rc in rest if rc[0] != first[0]])
    return [c for c in chains if len(c) >= 2]


def sibling_chains(text: str, tree: Any, rng: random.Random) -> list[list[LineChange]]:
    chains = []
    for block in (n for n in _walk(tree.root_node) if n.type in ("module", "block")):
        run: list[Any] = []
        for child in list(block.named_children) + [None]:
            ok = (child is not None and child.type == "expression_statement"
                  and child.start_point[0] == child.end_point[0]
                  and (not run or (child.start_point[1] == run[0].start_point[1]
                                   and child.start_point[0] == run[-1].start_point[0] + 1)))
            if ok:
                run.append(child)
                continue
            if len(run) >= 3:
                chain = _sibling_change(text, run, rng)
                if chain:
                    chains.append(chain)
            run = [child] if (child is not None and child.type == "expression_statement"
                              and child.start_point[0] == child.end_point[0]) else []
    return chains


def _sibling_change(text: str, run: list[Any], rng: random.Random) -> list[LineChange] | None:
    per_line = [{_text(n) for n in _walk(s) if n.type == "identifier"} - _SKIP_NAMES for s in run]
    best: tuple[int, int, set[str]] = (0, 0, set())
    for i in range(len(run)):  # the longest stretch of the run sharing an identifier
        shared = per_line[i]
        j = i + 1
        while j < len(run) and shared & per_line[j]:
            shared = shared & per_line[j]
            j += 1
        if shared and j - i > best[1] - best[0]:
            best = (i, j, shared)
    i, j, shared = best
    if j - i < 3:
        return None
    run = run[i:j]
    common = sorted(shared)
    name = rng.choice(common)
    new = _fresh(name, text, rng)
    spans = [(n.start_point[0], n.start_point[1], n.end_point[1], new)
             for s in run for n in _walk(s) if n.type == "identifier" and _text(n) == name]
    return _group_rows(spans)[:MAX_CHAIN]


def chain_edits(text: str, chain: list[LineChange]) -> list[Edit]:
    """The line changes as edits (line counts never change, so rows stay valid)."""
    lines = lines_of(text)
    edits = []
    for row, spans in chain:
        raw = lines[row].encode("utf-8", "surrogatepass")
        for c0, c1, rep in sorted(spans, reverse=True):
            raw = raw[:c0] + rep.encode("utf-8", "surrogatepass") + raw[c1:]
        new_line = raw.decode("utf-8", "surrogatepass")
        edits.append(Edit(row, row + 1, lines[row], new_line))
        lines[row] = new_line
    return edits


_FINDERS = {"rename": rename_chains, "add_param": add_param_chains, "sibling": sibling_chains}


def examples_from_code(text: str, *, path: str = "<string>", package: str = "", split: str = "train",
                       seed: int = 0, kinds: tuple[str, ...] = KINDS, per_chain: int = 1,
                       max_chains_per_kind: int = 3) -> list[Example]:
    """Synthetic examples from one file's text (empty if it does not parse or has no chains)."""
    from models import syntax

    if not text.endswith("\n"):
        text += "\n"
    if len(lines_of(text)) != text.count("\n"):  # a form feed or U+2028 ends a line for `lines_of`, not for
        return []  # tree-sitter: every row after it was one off, the edits written on the wrong lines
    tree = syntax.parse(text)
    if tree.root_node.has_error:
        return []
    rng = random.Random(f"{seed}:{path}")
    out = []
    for kind in kinds:
        chains = _FINDERS[kind](text, tree, rng)
        rng.shuffle(chains)
        for chain in chains[:max_chains_per_kind]:
            edits = chain_edits(text, chain)
            if len(edits) < 2:
                continue
            ks = rng.sample(range(1, len(edits)), min(per_chain, len(edits) - 1))
            for k in sorted(ks):
                cur = text
                for e in edits[:k]:
                    cur = apply_edit(cur, e)
                out.append(Example(path=path, package=package, original=text, history=edits[:k], current=cur,
                                   target=edits[k], source=f"synthetic:{kind}", split=split,
                                   meta={"step": k, "chain": len(edits)}))
    return out


def file_package(record: dict) -> str:
    """The package whose code a corpus file is: its record's, or for a vendored copy the package copied, under the
    same root label (``site:rich`` for ``pip/_vendor/rich/console.py``), so the copy is split as the original."""
    from models.corpus import vendored_package

    package = record["package"]
    vendored = vendored_package(record["path"])
    if vendored is None:
        return package
    label, _, _ = package.rpartition(":")
    return f"{label}:{vendored}" if label else vendored


def build_synthetic(corpus_dir: Path, out_dir: Path, *, limit_files: int | None = None, seed: int = 0,
                    log=print) -> dict:
    """``synthetic_{train,heldout}.jsonl`` from every split of the corpus, each file on the side its package takes
    in `heldout_split`, the rule the real changes follow. The corpus's own split (5 % held out for the code model,
    by names such as ``site:attr``) would put code of held-out release packages into training chains.
    ``limit_files``: at most that many files of each corpus split."""
    from models.corpus import SPLITS, iter_split
    from models.next_edit.examples import write_jsonl
    from models.next_edit.real_changes import heldout_split

    by_split: dict[str, list[Example]] = {"train": [], "heldout": []}
    for corpus_split in SPLITS:
        if not (Path(corpus_dir) / f"{corpus_split}.jsonl").is_file():  # calib.jsonl of a corpus laid out by hand
            continue
        for i, rec in enumerate(iter_split(Path(corpus_dir), corpus_split)):
            if limit_files is not None and i >= limit_files:
                break
            if len(rec["text"]) > 100_000:
                continue
            package = file_package(rec)
            split = heldout_split(package)
            by_split[split].extend(examples_from_code(rec["text"], path=rec["path"], package=package, split=split,
                                                      seed=seed))
    counts = {}
    for split, exs in by_split.items():
        counts[split] = write_jsonl(Path(out_dir) / f"synthetic_{split}.jsonl", exs)
        log(f"synthetic {split}: {counts[split]} examples")
    return counts
