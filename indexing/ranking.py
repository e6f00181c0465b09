"""Hybrid ranking: reciprocal-rank fusion of lexical and vector results, then code-aware adjustments.

Pure functions over plain candidates so the ranking can be tested without a store:

1. *Fusion*: each retriever contributes ``weight / (k + rank)`` for every candidate it returned.
2. *Code-aware boosts*, multiplicative on the fused score: a chunk whose symbol name matches the query
   (exactly, or all of its sub-words), whose path mentions query words, or that is a definition rather
   than a window of lines or module-level code ranks higher.
3. *De-duplication*: of chunks from one file whose line ranges overlap mostly (a class skeleton and its
   method, two windows), only the best-ranked one is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from indexing.models import SearchHit

_SCORE_SCALE = 60  # hit scores are shown scaled so that a top-1 hit of one list scores about 1
DEFINITION_KINDS = frozenset(
    {"function", "method", "class", "interface", "struct", "enum", "trait", "impl", "type", "module_def"}
)
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_STOP = frozenset(
    "a an and are as at be by do does for from how i in is it of on or that the this to what when where "
    "which who why with".split()
)


@dataclass(frozen=True, slots=True)
class RankingWeights:
    """Tunable weights. ``k`` and ``vector`` were chosen on the tuning half of the retrieval benchmark's
    queries (Django, CodeSearchNet protocol) and checked on the held-out half (see BENCHMARKS.md). The
    low vector weight reflects the offline fallback model (static, distilled from MiniLM); revisit it
    with a stronger code model."""

    k: int = 20  # the RRF constant: smaller trusts the top of each list more
    lexical: float = 1.0
    vector: float = 0.25
    exact_name: float = 1.6
    name_words: float = 1.25
    path_words: float = 1.1
    definition: float = 1.1
    overlap: float = 0.5  # share of the smaller range that makes two chunks duplicates


@dataclass(slots=True)
class Candidate:
    """A chunk returned by at least one retriever."""

    id: str
    row: Mapping[str, Any]
    ranks: dict[str, int] = field(default_factory=dict)  # retriever -> 0-based rank
    score: float = 0.0


def query_words(query: str) -> list[str]:
    """Lower-case words of a query, identifiers split (``parseJSON`` -> ``parse``, ``json``)."""
    words: list[str] = []
    for token in _WORD.findall(query):
        parts = [p.lower() for p in _CAMEL.findall(token)] or [token.lower()]
        words.extend(parts)
        if len(parts) > 1:
            words.append(token.lower())
    return [w for w in words if w not in _STOP]


def _name_words(name: str) -> set[str]:
    out: set[str] = set()
    for token in _WORD.findall(name):
        out.update(p.lower() for p in _CAMEL.findall(token))
    return out


def fuse(
    lexical: Sequence[Mapping[str, Any]],
    vector: Sequence[Mapping[str, Any]],
    weights: RankingWeights = RankingWeights(),
) -> dict[str, Candidate]:
    """Reciprocal-rank fusion of two ranked lists of rows keyed by ``id``."""
    candidates: dict[str, Candidate] = {}
    for source, rows, weight in (("lexical", lexical, weights.lexical), ("vector", vector, weights.vector)):
        for rank, row in enumerate(rows):
            cand = candidates.get(row["id"])
            if cand is None:
                cand = candidates[row["id"]] = Candidate(id=row["id"], row=row)
            elif "text" not in cand.row and "text" in row:
                cand.row = row
            if source not in cand.ranks:
                cand.ranks[source] = rank
                cand.score += weight / (weights.k + rank + 1)
    return candidates


def boost(cand: Candidate, words: Sequence[str], raw_query: str, weights: RankingWeights) -> float:
    """The code-aware multiplier for one candidate."""
    row = cand.row
    factor = 1.0
    name = str(row.get("name") or "")
    if name:
        if name.lower() == raw_query.strip().lower() or name.lower() == "".join(words):
            factor *= weights.exact_name
        else:
            nwords = _name_words(name)
            if nwords and words and nwords <= set(words):
                factor *= weights.name_words
    if words:
        path_words = _name_words(str(row.get("path") or ""))
        if any(w in path_words for w in words if len(w) > 2):
            factor *= weights.path_words
    if row.get("kind") in DEFINITION_KINDS:
        factor *= weights.definition
    return factor


def _overlaps(a: Mapping[str, Any], b: Mapping[str, Any], share: float) -> bool:
    if a["path"] != b["path"]:
        return False
    lo = max(a["start_line"], b["start_line"])
    hi = min(a["end_line"], b["end_line"])
    if hi < lo:
        return False
    smaller = min(a["end_line"] - a["start_line"], b["end_line"] - b["start_line"]) + 1
    return (hi - lo + 1) >= share * smaller


def rank(
    query: str,
    lexical: Sequence[Mapping[str, Any]],
    vector: Sequence[Mapping[str, Any]],
    limit: int,
    weights: RankingWeights = RankingWeights(),
) -> list[Candidate]:
    """Fuse, boost, sort and de-duplicate; returns at most ``limit`` candidates, best first."""
    candidates = fuse(lexical, vector, weights)
    words = query_words(query)
    for cand in candidates.values():
        cand.score *= boost(cand, words, query, weights)
    ordered = sorted(candidates.values(), key=lambda c: (-c.score, c.id))
    kept: list[Candidate] = []
    for cand in ordered:
        if "path" in cand.row and any(
            "path" in k.row and _overlaps(cand.row, k.row, weights.overlap) for k in kept
        ):
            continue
        kept.append(cand)
        if len(kept) >= limit:
            break
    return kept


def to_hit(cand: Candidate) -> SearchHit:
    row = cand.row
    return SearchHit(
        path=row["path"],
        start_line=int(row["start_line"]),
        end_line=int(row["end_line"]),
        symbol=row.get("symbol") or "",
        kind=row.get("kind") or "",
        language=row.get("language") or "",
        score=round(cand.score * _SCORE_SCALE, 4),
        text=row.get("text") or "",
        signature=row.get("signature") or "",
        sources=tuple(sorted(cand.ranks)),
    )
