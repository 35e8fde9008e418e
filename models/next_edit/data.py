"""`tact train next-edit-data`: build the real-change and synthetic next-edit examples."""

from __future__ import annotations

import sys
from pathlib import Path


def main_cli(args) -> int:
    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    both = not args.real and not args.synthetic
    out = Path(args.out)
    if args.real or both:
        from models.next_edit.real_changes import build_real

        m = build_real(out, log=log)
        print(f"real: {m['counts']} ({len(m['pairs'])} version pairs, {len(m['failed'])} failed downloads); "
              f"manifest: {out / 'real_manifest.json'}")
    if args.synthetic or both:
        from models.next_edit.synthetic import build_synthetic

        counts = build_synthetic(Path(args.corpus), out, limit_files=args.limit, seed=args.seed, log=log)
        print(f"synthetic: {counts}")
    return 0
