"""Progress bars for long offline jobs: tqdm when installed (training extra), plain iteration otherwise."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None, disable: bool = False) -> Iterable[T]:
    try:
        from tqdm import tqdm
    except ImportError:  # serving installs have no tqdm
        return items
    return tqdm(items, desc=desc, total=total, disable=disable or not sys.stderr.isatty(), file=sys.stderr, mininterval=2.0)
