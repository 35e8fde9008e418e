"""`tact train next-edit-data`: build the real-change and synthetic next-edit examples."""

from __future__ import annotations

import sys
from pathlib import Path

CORPUS_FILES = ("train.jsonl", "heldout.jsonl")  # every corpus has them; the chains' split is not the corpus's


def main_cli(args) -> int:
    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    telemetry = args.telemetry or []
    both = not args.real and not args.synthetic and not telemetry
    out = Path(args.out)
    # --limit and --seed shape the synthetic chains alone (the real changes and telemetry take neither): taken and
    # ignored, a run with them said nothing of it. --seed 0 is the default, which no run can tell from none given.
    ignored = [flag for flag, given in (("--limit", args.limit is not None), ("--seed", args.seed != 0)) if given]
    if ignored and not (args.synthetic or both):
        built = " and ".join(what for what, on in (("the real changes", args.real), ("telemetry", telemetry)) if on)
        print(f"tact train next-edit-data: error: {' and '.join(ignored)} shape{'s' * (len(ignored) == 1)} the "
              f"synthetic chains, which this run does not build ({built} only); add --synthetic, or leave "
              f"{'it' if len(ignored) == 1 else 'them'} out", file=sys.stderr)
        return 2
    # Bad input is refused before the downloads and before anything is written (an earlier file stays as it was)
    if args.synthetic or both:
        from models.train_lm import check_corpus  # TrainingInputError, which `tact` prints as one line

        check_corpus(Path(args.corpus), *CORPUS_FILES)
    if telemetry:
        from models.next_edit.telemetry_examples import from_telemetry
        from telemetry.schema import TelemetrySchemaError

        found = from_telemetry(telemetry)
        if len(found.refusals) == len(telemetry):
            raise TelemetrySchemaError(f"{'; '.join(found.refusals)}: nothing written (--telemetry names a Tact "
                                       "telemetry database)")
    if args.real or both:
        from models.next_edit.real_changes import build_real

        m = build_real(out, log=log)
        print(f"real: {m['counts']} ({len(m['pairs'])} version pairs, {len(m['failed'])} failed downloads); "
              f"manifest: {out / 'real_manifest.json'}")
    if args.synthetic or both:
        from models.next_edit.synthetic import build_synthetic

        counts = build_synthetic(Path(args.corpus), out, limit_files=args.limit, seed=args.seed, log=log)
        print(f"synthetic: {counts}")
    if telemetry:
        from models.next_edit.examples import write_jsonl

        for refusal in found.refusals:
            log(f"refused: {refusal}")
        n = write_jsonl(out / "telemetry_train.jsonl", found.examples)
        skipped = ", ".join(f"{why}: {k}" for why, k in found.skipped.items()) or "none"
        print(f"telemetry: {n} examples from {len(telemetry) - len(found.refusals)} databases "
              f"({out / 'telemetry_train.jsonl'}; skipped: {skipped})")
        if found.refusals:
            return 1
    return 0
