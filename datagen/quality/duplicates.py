"""Near-duplicate texts within one collection and across collections (runs, or the splits of one
dataset), found with MinHash LSH (``datasketch``) and confirmed by the exact Jaccard similarity of
the two texts' word shingles, so every pair listed really is at or above the stated threshold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

THRESHOLD = 0.8
SHINGLE_WORDS = 3
NUM_PERM = 128
LISTED = 50  # pairs listed per figure; the counts cover all of them

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Settings:
    threshold: float = THRESHOLD
    shingle_words: int = SHINGLE_WORDS
    num_perm: int = NUM_PERM

    def describe(self) -> str:
        return (
            f"Jaccard similarity of {self.shingle_words}-word shingles >= {self.threshold} "
            f"(MinHash LSH, {self.num_perm} permutations, each candidate pair confirmed exactly)"
        )


def shingles(text: str, size: int) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def near_duplicates(
    groups: Mapping[str, Sequence[tuple[str, str]]], settings: Settings | None = None
) -> dict[str, Any]:
    """Pairs of near-duplicate texts; ``groups`` maps a collection name to its (id, text) items.

    Returns the settings in words, the pairs inside each group and the pairs across groups (counts,
    and the most similar pairs listed), and how many items have a near-duplicate anywhere."""
    from datasketch import MinHash, MinHashLSH

    settings = settings or Settings()
    keys: list[tuple[str, str]] = []
    sets: list[set[str]] = []
    for group, items in groups.items():
        for item_id, text in items:
            grams = shingles(text, settings.shingle_words)
            if grams:
                keys.append((group, item_id))
                sets.append(grams)
    lsh = MinHashLSH(threshold=settings.threshold, num_perm=settings.num_perm)
    hashes = MinHash.bulk(([g.encode("utf-8") for g in grams] for grams in sets), num_perm=settings.num_perm)
    pairs: set[tuple[int, int]] = set()
    for index, minhash in enumerate(hashes):
        for other in lsh.query(minhash):
            pairs.add((other, index))
        lsh.insert(index, minhash)
    within: dict[str, list[dict[str, Any]]] = {g: [] for g in groups}
    across: list[dict[str, Any]] = []
    involved: set[int] = set()
    for a, b in pairs:
        jaccard = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
        if jaccard < settings.threshold:
            continue
        involved.update((a, b))
        (ga, ia), (gb, ib) = keys[a], keys[b]
        pair = {"a": ia, "b": ib, "jaccard": round(jaccard, 3)}
        if ga == gb:
            within[ga].append(pair)
        else:
            across.append({**pair, "a_in": ga, "b_in": gb})

    def listed(found: list[dict[str, Any]]) -> dict[str, Any]:
        ordered = sorted(found, key=lambda p: (-p["jaccard"], p["a"], p["b"]))
        return {"pairs": len(found), "listed": ordered[:LISTED]}

    return {
        "rule": settings.describe(),
        "threshold": settings.threshold,
        "items": len(keys),
        "items_with_a_near_duplicate": len(involved),
        "within": {g: listed(found) for g, found in within.items()},
        "across": listed(across),
    }
