"""What the deid stage shows a reviewer: sample lines of its masked output (never its input)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from tasks.store import read_shard

SAMPLE_LINES = 20
_PLACEHOLDER = re.compile(r"<(?:[A-Z_]+_\d+|[A-Z_]+)(?::[0-9a-f]+)?>")
_MAX_LINE_CHARS = 300
_POOL = 50  # candidate lines kept per wanted line: enough to choose from without reading every shard


def sample_lines(shards: Iterable[Path], n: int = SAMPLE_LINES) -> list[str]:
    """Return ``n`` lines of the stage's output shards, those holding a placeholder first, in a fixed order.

    The lines come from the masked text the stage wrote, so only de-identified text is ever logged;
    the order is by a hash of each line, so the same output gives the same sample.
    """
    masked: list[str] = []
    plain: list[str] = []
    for path in shards:
        for doc in read_shard(path):
            for line in (doc.get("text") or "").splitlines():
                line = line.strip()[:_MAX_LINE_CHARS]
                if line:
                    (masked if _PLACEHOLDER.search(line) else plain).append(line)
        if len(masked) >= n * _POOL:
            break
    order = lambda line: hashlib.sha256(line.encode("utf-8")).digest()  # noqa: E731
    chosen = sorted(set(masked), key=order)[:n]
    return chosen + sorted(set(plain), key=order)[: n - len(chosen)]
