"""Percentiles of latency samples (microseconds in, milliseconds out)."""

from __future__ import annotations

import array
import math
from collections.abc import Iterable
from typing import Any


def merge(chunks: Iterable[bytes]) -> list[int]:
    """Samples from several workers' ``array('q')`` bytes, sorted."""
    values = array.array("q")
    for chunk in chunks:
        values.frombytes(chunk)
    return sorted(values)


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not ordered:
        return 0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(ordered: list[int]) -> dict[str, Any]:
    """count, p50, p95, p99, max and mean, in milliseconds."""

    def ms(us: float) -> float:
        return round(us / 1000, 2)

    return {
        "count": len(ordered),
        "p50": ms(percentile(ordered, 50)),
        "p95": ms(percentile(ordered, 95)),
        "p99": ms(percentile(ordered, 99)),
        "max": ms(ordered[-1] if ordered else 0),
        "mean": ms(sum(ordered) / len(ordered) if ordered else 0),
    }
