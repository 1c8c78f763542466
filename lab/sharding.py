"""Split the topology matrix across CI machines: ``--shard K/N`` keeps every K-th share.

A topology's share is a stable hash of its name, so each machine brings up only its own
topologies and the union of all shards is the whole matrix. The CI system runs N jobs
(a matrix of K = 1..N); no scheduler of the lab's own.
"""

from __future__ import annotations

import re
import zlib

from lab.errors import LabError


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/3"`` → (2, 3); LabError unless 1 ≤ K ≤ N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise LabError(f"--shard {text!r} is not K/N with 1 ≤ K ≤ N (e.g. 2/3)")
    return int(match.group(1)), int(match.group(2))


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Whether the topology (or case) ``key`` belongs to shard K of N."""
    index, count = shard
    return zlib.crc32(key.encode()) % count == index - 1
