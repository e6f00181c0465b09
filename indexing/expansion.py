"""Query expansion: natural-language words of a query mapped to the code words that name what they describe.

A query written as prose ("limit how often a function is called") often shares no word with the code
that answers it (``throttle``). The table in ``indexing/data/expansion.json.gz`` maps a stemmed prose
word (`indexing.ranking.stem`) to a few identifier sub-words with an association weight in 0..1; it is
learned, not written by hand, from (doc comment, code) pairs of code outside the retrieval benchmark by
``python -m tests.benchmarks.retrieval.expansion_table`` (see that module for the scoring).

`expand` turns a query's prose words into at most `MAX_TERMS` code words the query does not already hold,
each with its weight. The search uses them twice, always below the user's own words:

- the lexical leg's BM25 query (`lexical_query`) holds each once and the query's own words about
  ``1 / RankingWeights.expansion_lexical`` times (LanceDB's BM25 adds a word's score once per
  occurrence in the query), so an expanded word counts that fraction of a query word. One query: a
  second query for the expanded words, or a BooleanQuery of boosted clauses, cost the lexical leg
  twice as long on Django; the words' own weights apply in the ranking only;
- the ranking (`indexing.ranking.boost` and ``FEATURES``) counts a chunk's name, file name or text
  holding an expanded word as ``RankingWeights.expansion`` times the word's weight of a query word's
  match, and keeps such matches apart so the learned re-scoring can tell original from expanded ones.

Off by default (``RankingWeights.expansion`` and ``expansion_lexical`` are 0): on the retrieval
benchmark's tuning split no table and weight tried gained (the BM25 part lost 0.003-0.009 NDCG@10, the
ranking part moved it by +-0.002; BENCHMARKS.md, "Query expansion (issue 13, session 9)"). The
``query_expansion`` setting (`indexing.config.IndexSettings`) turns the ranking part on.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterable, Mapping
from importlib import resources

TABLE_FILE = "expansion.json.gz"
MAX_TERMS = 8  # expanded code words per query, strongest first
MIN_WEIGHT = 0.05  # weaker associations are not used

Expansions = tuple[tuple[str, float], ...]
"""Code words added to a query, each with its association weight (0..1), strongest first."""


@functools.lru_cache(maxsize=1)
def load_table() -> Mapping[str, tuple[tuple[str, float], ...]]:
    """The packaged table: stemmed prose word -> ((code word, weight), ...), strongest first. Empty when
    the data file is missing (a source tree without it: search works, unexpanded)."""
    try:
        raw = resources.files("indexing").joinpath("data", TABLE_FILE).read_bytes()
    except FileNotFoundError:
        return {}
    data = json.loads(gzip.decompress(raw))
    return {word: tuple((str(t), float(w)) for t, w in terms) for word, terms in data["table"].items()}


def expand(
    words: Iterable[str],
    known: Iterable[str] = (),
    table: Mapping[str, tuple[tuple[str, float], ...]] | None = None,
    limit: int = MAX_TERMS,
) -> Expansions:
    """The code words that ``words`` (stemmed prose words of one query) expand to: neither one of
    ``words`` nor of ``known`` (stems the query holds otherwise), weight of the strongest association
    when several words lead to one, at most ``limit``, strongest first."""
    from indexing.ranking import stem  # ranking imports this module; the stemmer is one rule for both

    table = load_table() if table is None else table
    words = list(words)
    held = set(words) | set(known)
    best: dict[str, float] = {}
    for word in words:
        for term, weight in table.get(word, ()):
            if weight < MIN_WEIGHT or stem(term) in held:
                continue
            if weight > best.get(term, 0.0):
                best[term] = weight
    ordered = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(ordered[:limit])


def lexical_query(query: str, expansions: Expansions, weight: float) -> str:
    """The BM25 query text of a search: ``query`` repeated ``round(1 / weight)`` times, then each
    expanded code word once, so that an expanded word counts about ``weight`` of one of the query's own
    words. ``query`` unchanged when there is nothing to add or ``weight`` is 0."""
    if not expansions or weight <= 0:
        return query
    return " ".join([query] * max(1, round(1 / weight)) + [term for term, _ in expansions])
