"""Ranking of search candidates: score fusion, field matches, path priors, file aggregation, de-duplication.

Pure functions over plain rows so the ranking can be tested without a store. Up to three retrievers
supply candidates: ``lexical`` (BM25 over the chunk text, its path, qualified name and split
identifiers; rows carry ``_score``), ``vector`` (nearest chunks; rows carry ``_distance``) and
``symbol`` (the chunks that define an identifier named in the query, found in the symbols table).

1. *Fusion*: each retriever's raw scores are normalised to 0..1 within its list (by rank when a list
   has no scores) and summed with the retriever's weight.
2. *Query analysis* (:func:`analyse`): content words, stemmed (``parsing``, ``parser``, ``parse`` ->
   ``pars``), identifiers split (``parseJSON`` -> ``parse``, ``json``) and kept whole, and whether the
   query is a bare symbol (``Session.send``, ``task_struct``, ``struct task_struct``); the prose words'
   code words (``minimum`` -> ``min``, `indexing.expansion`; off by default), which count
   ``weights.expansion`` times their association weight of a query word's match and are kept apart in
   ``cand.parts``.
3. *Field matches*, multiplicative: the share of query words found in the chunk's symbol name, in its
   path (file stem and folders), and in its text (which holds its doc comment and signature); an exact
   (qualified) name match, which for a symbol query is decisive; definitions over module code and
   windows.
4. *Path priors*: tests, examples, docs, vendored, generated and minified files, stubs and re-export
   barrels are pushed down (not out: a query about a test still finds it).
5. *File aggregation*: the best chunk of a file that holds several candidates gains a little, so a file
   that is about the query beats a lone lucky chunk.
6. *Learned re-scoring* (:func:`rescore`): the best ``ranking_model.TOP`` candidates get a new score
   from a small model over :data:`FEATURES` (the hand-weighted score, the shares above, the retrievers'
   scores and ranks, word rarity among the candidates, file cover, chunk length, path flags), boosted
   regression trees in ``indexing/ranking_model.py``, one set for hybrid and one for lexical candidates.
   Then a Rust ``impl`` that scores above the definition of its type (same file, same name) moves just
   below it (:func:`impls_after_their_types`).
7. *De-duplication and file diversity*: of chunks from one file whose line ranges overlap mostly (a class
   skeleton and its method, two windows), only the best-ranked one is kept; past a file's fourth hit,
   each further one scores half the one before, so that one file does not fill the list. A search for
   files (:func:`files_view`) keeps each file once, at its best chunk, with the words of the file's name
   counting more.

The weights were tuned, and the model fitted (``python -m tests.benchmarks.retrieval.learn``), on the
tuning split of the retrieval benchmark (``tests/benchmarks/retrieval``) only, and checked on its
held-out split; see BENCHMARKS.md.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from indexing import ranking_model
from indexing.expansion import Expansions, expand
from indexing.models import SearchHit

_SCORE_SCALE = 10  # hit scores are shown scaled so that a strong top hit scores around 10-30
DEFINITION_KINDS = frozenset(
    {
        "function",
        "method",
        "class",
        "interface",
        "struct",
        "enum",
        "trait",
        "impl",
        "type",
        "module_def",
        "macro",
        "constant",
    }
)
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_CAMEL_ASCII = re.compile(_CAMEL.pattern, re.ASCII)  # `\d` as in `_WORD`: ASCII digits only
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:(?:::|\.|#|->|\\)[A-Za-z_$][A-Za-z0-9_$]*)*")
_QUALIFIER = re.compile(r"::|\.|#|->|\\")
_BLANK_PUNCTUATION = {c: " " for c in range(128) if not chr(c).isalnum()}
_STOP = frozenset(
    "a an and are as at be by can do does for from has have how i in into is it its of on or that the "
    "their them then there this to what when where which who why will with".split()
)
_DECL_WORDS = frozenset(
    "class struct interface enum trait impl type fn func function def module namespace const let var".split()
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ers", "er", "ed", "es", "s", "ly")

_TEST_PATH = re.compile(
    r"(?:^|/)(?:tests?|__tests__|spec|specs|testing|testdata|fixtures?)/"
    r"|(?:^|/)(?:test_[^/]*|[^/]*_test|[^/]*\.test|[^/]*\.spec|[^/]*_spec|[^/]*Test|[^/]*Tests|conftest)\.[A-Za-z]+$"
)
_AUX_PATH = re.compile(r"(?:^|/)(?:_?examples?|samples?|docs?|docs_src|benches|benchmarks?|demo)/")
_VENDOR_PATH = re.compile(
    r"(?:^|/)(?:vendor|third_party|node_modules|dist|build|generated|gen)/"
    r"|\.min\.[a-z]+$|_pb2\.py$|\.pb\.go$|\.generated\.[a-z]+$|\.d\.ts$"
)
_CONTAINER_KINDS = frozenset({"class", "struct", "interface", "trait", "impl", "module_def", "enum", "type"})
_BARREL_NAMES = frozenset({"__init__.py", "index.ts", "index.js", "mod.rs", "lib.rs"})


@dataclass(frozen=True, slots=True)
class RankingWeights:
    """Tunable weights, chosen on the tuning split of the retrieval benchmark (see BENCHMARKS.md)."""

    lexical: float = 1.0
    vector: float = 0.2
    symbol: float = 2.0  # a chunk that defines an identifier the query names
    name: float = 3.0  # share of query words in the symbol name
    exact_name: float = 1.5  # the query names the chunk's symbol (qualified or not)
    symbol_query: float = 4.0  # ... and the query is nothing but that symbol
    # ... for a member named so (`Validator.Engine` for "Engine"): symbol_query ** member, so that the
    # definition whose whole name the query is comes first
    member: float = 0.5
    text: float = 0.8  # share of query words in the chunk text
    doc: float = 2.0  # share of query words in the doc comment
    signature: float = 0.3  # share of query words in the signature (parameters, types)
    path: float = 2.0  # share of query words in the path
    file_name: float = 0.0  # share of query words in the file's name (no folders, no extension)
    definition: float = 1.6
    module: float = 0.5  # module-level code (imports, constants, loose statements)
    test: float = 0.2
    auxiliary: float = 0.6  # examples, docs, benchmarks
    vendored: float = 0.4  # vendored, generated, minified, declaration stubs
    barrel: float = 0.85  # __init__.py, index.ts, mod.rs: mostly re-exports
    file: float = 0.15  # file aggregation: bonus share for the best chunk of a file with several
    container: float = 0.45  # a class, impl or module skeleton when one of its members is a candidate too
    overlap: float = 0.5  # share of the smaller range that makes two chunks duplicates
    nested: float = 3.0  # ... unless one is this many times larger: a skeleton and its member both stay
    # file diversity in the list: the hits of one file after its first `same_file_kept` score `same_file`
    # times less each (1: off), so that one file does not fill the list (BENCHMARKS.md, "semble's own
    # queries again"); from the third hit it lost on the held-out split and in the agent's context
    same_file: float = 0.5
    same_file_kept: int = 4
    k: int = 5  # rank normalisation of lists that carry no scores
    learned: float = 1.0  # the learned re-scoring (`indexing.ranking_model`): 1 as fitted, 0 off
    # an expanded code word (`indexing.expansion`) against a query word in the ranking, and in the lexical
    # leg's BM25 query; 0 off. Off by default: no setting gained on the tuning split (BENCHMARKS.md)
    expansion: float = 0.0
    expansion_lexical: float = 0.0


@dataclass(slots=True)
class Candidate:
    """A chunk returned by at least one retriever."""

    id: str
    row: Mapping[str, Any]
    ranks: dict[str, int] = field(default_factory=dict)  # retriever -> 0-based rank
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)  # what the score is made of: see `FEATURES`


@dataclass(frozen=True, slots=True)
class QueryAnalysis:
    """What ranking needs to know about a query."""

    words: tuple[str, ...]  # content words and identifier parts, lower-case, stemmed, distinct
    identifiers: tuple[str, ...]  # identifier-like tokens as typed (``Session.send``, ``parse_url``)
    symbol: str  # the whole query when it is a bare (qualified) symbol, normalised with dots; else ""
    starts: tuple[
        tuple[str, ...], ...
    ] = ()  # each word's forms as word starts (`` pars``; `` proxi``, `` proxy``)
    expansions: Expansions = ()  # code words the prose words expand to (`indexing.expansion`), weighted
    expanded: tuple[str, ...] = ()  # their stems, in the same order


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light English stemmer for matching words across forms: ``parsing``/``parser``/``parse`` ->
    ``pars``, ``cookies``/``cookie`` -> ``cooki``, ``proxies``/``proxy`` -> ``proxi``, ``redirected``/
    ``redirects`` -> ``redirect``."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith(("e", "y")) and len(word) > 3:
        word = word[:-1] + ("i" if word.endswith("y") else "")
    return word


def _split(token: str) -> list[str]:
    return [p.lower() for part in token.split("_") for p in _CAMEL.findall(part)]


def identifier_tokens(text: str) -> set[str]:
    """The distinct tokens of `text` that `identifier_words` splits into words."""
    return set(_WORD.findall(text))


def identifier_words(text: str) -> Iterator[str]:
    """The lower-case words of `text`, identifiers split (``parseHTTPHeader`` -> ``parse``, ``http``,
    ``header``; ``max_retries`` -> ``max``, ``retries``). Not stemmed; stop words kept."""
    for token in _WORD.findall(text):
        yield from _split(token)


def query_words(query: str) -> list[str]:
    """Lower-case words of a query, identifiers split (``parseJSON`` -> ``parse``, ``json``, and the
    whole ``parsejson``), stop words dropped. Not stemmed."""
    words: list[str] = []
    for token in _WORD.findall(query):
        parts = _split(token) or [token.lower()]
        words.extend(parts)
        if len(parts) > 1:
            words.append(token.lower())
    return [w for w in words if w not in _STOP]


def _normal_symbol(text: str) -> str:
    return _QUALIFIER.sub(".", text.strip()).strip(".").lower()


def analyse(query: str) -> QueryAnalysis:
    words: list[str] = []
    for w in query_words(query):
        s = stem(w)
        if s not in words and w not in _DECL_WORDS:
            words.append(s)
    tokens = query.split()
    identifiers = tuple(
        t
        for t in _IDENT.findall(query)
        if ("_" in t or _QUALIFIER.search(t) or any(c.isupper() for c in t[1:]) or len(tokens) == 1)
        and t.lower() not in _STOP
    )
    bare = [t for t in tokens if t.lower() not in _DECL_WORDS]
    symbol = ""
    if len(bare) == 1 and _IDENT.fullmatch(bare[0]) and len(tokens) <= 2:
        symbol = _normal_symbol(bare[0])
    starts = tuple((" " + w, " " + w[:-1] + "y") if w.endswith("i") else (" " + w,) for w in words)
    expansions: Expansions = ()
    if not symbol:
        # prose words only: an identifier the user typed names the code already
        named = {stem(p) for ident in identifiers for p in query_words(ident)}
        expansions = expand((w for w in words if w not in named), words)
    expanded = tuple(stem(t) for t, _ in expansions)
    return QueryAnalysis(tuple(words), identifiers, symbol, starts, expansions, expanded)


def symbol_names(query: str) -> list[str]:
    """Names to look up in the symbols table for a query: the last part of each identifier-like token
    (``Session.send`` -> ``send``), longest first."""
    names: list[str] = []
    for ident in analyse(query).identifiers:
        name = _QUALIFIER.split(ident)[-1]
        if len(name) >= 3 and name not in names:
            names.append(name)
    return sorted(names, key=len, reverse=True)


@functools.lru_cache(maxsize=1 << 14)
def _field_words(text: str) -> frozenset[str]:
    """Stemmed sub-words of a name, path, doc comment or signature: the ``_split`` parts of each ``_WORD``
    token. One pass of `_CAMEL_ASCII` over the whole text finds the same parts (a part never spans two
    tokens, and every token has one), and each distinct part is stemmed once: the doc comments and
    signatures of a search's candidates are mostly new to the cache, and splitting them token by token
    was half of the ranking's time."""
    return frozenset(map(stem, {p.lower() for p in _CAMEL_ASCII.findall(text)}))


def _text_matches(row: Mapping[str, Any], analysis: QueryAnalysis, expanded: bool = False) -> tuple[int, int]:
    """Which query words the chunk's searchable text holds, at the start of a word, as a bit mask over
    ``analysis.words`` (``search_text``
    has the identifiers split, the path and the qualified name); and, if ``expanded``, the same over
    ``analysis.expanded`` (else 0). Substring tests on the text with
    punctuation blanked: no tokenising, which cost more than the rest of the ranking together."""
    source = row.get("search_text")
    if source is None:
        text = f"{row.get('text') or ''} {row.get('symbol') or ''}"
        source = text + " " + " ".join(_split(" ".join(_WORD.findall(text))))
    spaced = " " + str(source).lower().translate(_BLANK_PUNCTUATION)
    mask = sum(1 << i for i, forms in enumerate(analysis.starts) if any(f in spaced for f in forms))
    if not expanded:
        return mask, 0
    return mask, sum(1 << i for i, w in enumerate(analysis.expanded) if " " + w in spaced)


def path_prior(path: str, weights: RankingWeights) -> float:
    """Down-weighting of tests, examples and docs, vendored or generated files and re-export barrels."""
    factor = 1.0
    if _TEST_PATH.search(path):
        factor *= weights.test
    if _AUX_PATH.search(path):
        factor *= weights.auxiliary
    if _VENDOR_PATH.search(path):
        factor *= weights.vendored
    if path.rsplit("/", 1)[-1] in _BARREL_NAMES:
        factor *= weights.barrel
    return factor


def _normalised(rows: Sequence[Mapping[str, Any]], weights: RankingWeights) -> list[float]:
    """Each row's score within its list, 0..1 (best 1): raw scores when the rows carry them. Distances
    first: a nearest chunk that BM25 found too keeps its ``_score`` (`WorkspaceIndex.search` joins the
    rows), and a vector list whose every row was such a chunk was once normalised by BM25's scores."""
    if not rows:
        return []
    if all("_distance" in r for r in rows):
        raw = [-float(r["_distance"]) for r in rows]
    elif all("_score" in r for r in rows):
        raw = [float(r["_score"]) for r in rows]
    else:
        return [(weights.k + 1) / (weights.k + 1 + n) for n in range(len(rows))]
    top, low = max(raw), min(raw)
    if top <= low:
        return [1.0] * len(rows)
    # floor at a tenth so the last of a short list still counts for something
    return [0.1 + 0.9 * (v - low) / (top - low) for v in raw]


def fuse(
    lexical: Sequence[Mapping[str, Any]],
    vector: Sequence[Mapping[str, Any]],
    weights: RankingWeights = RankingWeights(),
    symbol: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Candidate]:
    """Weighted sum of the retrievers' normalised scores, keyed by chunk ``id``."""
    candidates: dict[str, Candidate] = {}
    lists = (
        ("lexical", lexical, weights.lexical),
        ("vector", vector, weights.vector),
        ("symbol", symbol, weights.symbol),
    )
    for source, rows, weight in lists:
        for rank_, (row, norm) in enumerate(zip(rows, _normalised(rows, weights), strict=True)):
            cand = candidates.get(row["id"])
            if cand is None:
                cand = candidates[row["id"]] = Candidate(id=row["id"], row=row)
            elif ("text" not in cand.row and "text" in row) or (
                "search_text" not in cand.row and "search_text" in row
            ):
                cand.row = {
                    **row,
                    **cand.row,
                    **{k: v for k, v in row.items() if k in ("text", "search_text")},
                }
            if source not in cand.ranks:
                cand.ranks[source] = rank_
                cand.parts[source] = norm
                cand.score += weight * norm
    return candidates


def boost(cand: Candidate, analysis: QueryAnalysis, weights: RankingWeights) -> float:
    """The multiplier for one candidate: field matches, kind and path prior. The shares of query words
    found in each field are kept in ``cand.parts`` for the learned re-scoring."""
    row = cand.row
    parts = cand.parts
    words = set(analysis.words)
    factor = 1.0
    name = str(row.get("name") or "")
    qualified = str(row.get("symbol") or name)
    path = str(row.get("path") or "")
    if words:
        n = len(words)
        if name:
            name_words = _field_words(name)
            found = len(words & name_words)
            parts["name"] = found / n
            parts["name_mask"] = sum(1 << i for i, w in enumerate(analysis.words) if w in name_words)
            parts["name_cover"] = found / len(name_words) if name_words else 0.0
            factor *= 1.0 + weights.name * found / n
        mask, expanded_mask = _text_matches(row, analysis, bool(analysis.expanded and weights.expansion))
        parts["text_mask"] = mask
        parts["text"] = share = mask.bit_count() / n
        factor *= 1.0 + weights.text * share
        doc = row.get("doc")
        if doc and weights.doc:
            parts["doc"] = share = len(words & _field_words(str(doc)[:600])) / n
            factor *= 1.0 + weights.doc * share
        signature = row.get("signature")
        if signature and weights.signature:
            parts["signature"] = share = len(words & _field_words(str(signature))) / n
            factor *= 1.0 + weights.signature * share
        parts["path"] = share = len(words & _field_words(path.rsplit(".", 1)[0])) / n
        factor *= 1.0 + weights.path * share
        if weights.file_name:
            factor *= 1.0 + weights.file_name * len(words & _path_features(path)[1]) / n
        if analysis.expanded and weights.expansion:
            shares = _expanded_shares(parts, analysis, name, path, expanded_mask)
            factor *= 1.0 + weights.expansion * (
                weights.name * shares[0] + weights.path * shares[1] + weights.text * shares[2]
            )
    if name and analysis.identifiers:
        low_name, low_qual = name.lower(), _normal_symbol(qualified)
        named = _named(analysis.identifiers)
        whole = low_qual in named
        if whole or any(low_qual.endswith("." + q) for q in named):
            parts["exact"] = 1.0
            power = 1.0 if whole else weights.member  # a member named so: below the definition of that name
            factor *= weights.exact_name * (weights.symbol_query**power if analysis.symbol else 1.0)
        elif any(q.endswith("." + low_qual) for q in named):
            # the query qualifies the name further than the chunk does (`AxiosHeaders.set` for a `set`):
            # below a chunk whose qualified name is the query's
            parts["exact"] = 0.75
            factor *= weights.exact_name * (weights.symbol_query**0.75 if analysis.symbol else 1.0)
        elif any(q.rsplit(".", 1)[-1] == low_name for q in named):
            parts["exact"] = 0.5
            factor *= weights.exact_name * (weights.symbol_query**0.5 if analysis.symbol else 1.0)
    kind = row.get("kind")
    if kind in DEFINITION_KINDS:
        factor *= weights.definition
    elif kind == "module":
        factor *= weights.module
    return factor * path_prior(path, weights)


def _expanded_shares(
    parts: dict[str, float], analysis: QueryAnalysis, name: str, path: str, text_mask: int
) -> tuple[float, float, float]:
    """The expanded code words found in the chunk's name, file name and text (``text_mask``): for each
    field the sum of their weights over the query's word count (also kept in ``parts``)."""
    n = len(analysis.words) or 1
    name_words = _field_words(name) if name else frozenset()
    stem_words = _field_words(path.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    shares = [0.0, 0.0, 0.0]
    for i, (word, (_, weight)) in enumerate(zip(analysis.expanded, analysis.expansions, strict=True)):
        shares[0] += weight if word in name_words else 0.0
        shares[1] += weight if word in stem_words else 0.0
        shares[2] += weight if text_mask >> i & 1 else 0.0
    found = (shares[0] / n, shares[1] / n, shares[2] / n)
    parts["expanded_name"], parts["expanded_path"], parts["expanded_text"] = found
    return found


@functools.lru_cache(maxsize=256)
def _named(identifiers: tuple[str, ...]) -> frozenset[str]:
    """The query's identifiers, normalised: once per query, not once per candidate."""
    return frozenset(_normal_symbol(i) for i in identifiers)


def _overlaps(a: Mapping[str, Any], b: Mapping[str, Any], share: float, nested: float = 0.0) -> bool:
    """Whether two chunks are duplicates: one file, overlapping by ``share`` of the smaller, and (when
    ``nested``) not a container and a much smaller member of it."""
    if a["path"] != b["path"]:
        return False
    lo = max(a["start_line"], b["start_line"])
    hi = min(a["end_line"], b["end_line"])
    if hi < lo:
        return False
    sizes = sorted((a["end_line"] - a["start_line"] + 1, b["end_line"] - b["start_line"] + 1))
    if nested and sizes[1] >= nested * sizes[0]:
        return False
    return (hi - lo + 1) >= share * sizes[0]


def _demote_containers(candidates: Sequence[Candidate], factor: float) -> None:
    """A skeleton (class, impl, module) scores for its members' words: when a member is a candidate too,
    the member is the better answer."""
    by_path: dict[str, list[Candidate]] = {}
    for cand in candidates:
        by_path.setdefault(str(cand.row.get("path")), []).append(cand)
    for cands in by_path.values():
        if len(cands) < 2:
            continue
        for outer in cands:
            if outer.row.get("kind") not in _CONTAINER_KINDS:
                continue
            lo, hi = outer.row["start_line"], outer.row["end_line"]
            if any(
                c is not outer
                and lo <= c.row["start_line"]
                and c.row["end_line"] <= hi
                and (c.row["end_line"] - c.row["start_line"] < hi - lo)
                for c in cands
            ):
                outer.parts["container"] = 1.0
                outer.score *= factor


def score_candidates(
    query: str,
    lexical: Sequence[Mapping[str, Any]],
    vector: Sequence[Mapping[str, Any]],
    weights: RankingWeights = RankingWeights(),
    symbol: Sequence[Mapping[str, Any]] = (),
) -> tuple[list[Candidate], QueryAnalysis]:
    """Fuse, boost and aggregate by file: every candidate with its hand-weighted score, best first."""
    candidates = fuse(lexical, vector, weights, symbol)
    analysis = analyse(query)
    for cand in candidates.values():
        cand.score *= boost(cand, analysis, weights)
    if weights.container != 1.0:
        _demote_containers(list(candidates.values()), weights.container)
    if candidates:
        by_file: dict[str, list[Candidate]] = {}
        for cand in candidates.values():
            by_file.setdefault(str(cand.row.get("path")), []).append(cand)
        sums = {p: sum(c.score for c in cs) for p, cs in by_file.items()}
        top_sum = max(sums.values()) or 1.0
        for p, cs in by_file.items():
            share = sums[p] / top_sum
            for cand in cs:
                cand.parts["file_chunks"] = len(cs) - 1
                cand.parts["file_share"] = share
            if len(cs) > 1:
                best = max(cs, key=lambda c: c.score)
                best.parts["file_best"] = 1.0
                best.score *= 1.0 + weights.file * share
    ordered = sorted(candidates.values(), key=lambda c: (-c.score, c.id))
    return ordered, analysis


FEATURES: tuple[str, ...] = (
    "base",  # log of the hand-weighted score (fusion x field matches x priors x file aggregation)
    "lexical",  # the retrievers' normalised scores (0 when the chunk is not in that list)
    "lexical_rank",  # 1 / (1 + rank) in that list
    "vector",
    "vector_rank",
    "symbol",  # the chunk defines an identifier the query names
    "vector_alone",  # found by the vector leg only
    "name",  # shares of the query words in each field
    "name_cover",  # share of the symbol name's words that the query holds
    "text",
    "doc",
    "signature",
    "path",
    "stem_cover",  # share of the file name's words that the query holds
    "exact",  # 1: the query names the chunk's (qualified) symbol; 0.5: its last part
    "exact_symbol_query",  # ... and the query is nothing but a symbol
    "definition",
    "module",
    "window",
    "container",  # a class or impl skeleton with a member among the candidates
    "test",
    "auxiliary",
    "vendored",
    "barrel",
    "file_chunks",  # log(1 + other candidates of the same file)
    "file_best",  # the best candidate of a file with several
    "file_share",  # the file's summed score over the best file's
    "lines",  # log of the chunk's line count
    "has_doc",
    "natural_vector",  # the vector score when the query names no identifier
    "position",  # log(1 + position in the hand-weighted order)
    "depth",  # folders in the path
    "text_idf",  # share of the query words in the text, each weighted by its rarity among the candidates
    "name_idf",  # the same for the symbol name
    "file_cover",  # share of the query words found in the text of any candidate of the same file
    "name_prefix",  # share of the query words that start a word of the symbol name (``draft``: isDraftable)
    "stem_prefix",  # the same for the file name (``speed``: speedometer.js)
    "expanded_name",  # expanded code words (`indexing.expansion`) in the symbol name: summed weights / words
    "expanded_path",  # ... in the file name
    "expanded_text",  # ... in the text
)


@functools.lru_cache(maxsize=1 << 14)
def _path_features(path: str) -> tuple[tuple[float, float, float, float, float], frozenset[str], str]:
    """A path's flags (test, auxiliary, vendored, barrel) and folder depth, its file name's words, and
    those words joined for prefix tests (`` word word``): a search's candidates share a few files."""
    name = path.rsplit("/", 1)[-1]
    flags = (
        1.0 if _TEST_PATH.search(path) else 0.0,
        1.0 if _AUX_PATH.search(path) else 0.0,
        1.0 if _VENDOR_PATH.search(path) else 0.0,
        1.0 if name in _BARREL_NAMES else 0.0,
        float(path.count("/")),
    )
    words = _field_words(name.rsplit(".", 1)[0])
    return flags, words, " " + " ".join(sorted(words))


@functools.lru_cache(maxsize=1 << 14)
def _word_starts(name: str) -> str:
    """A name's words joined for prefix tests: `` word word``."""
    return " " + " ".join(sorted(_field_words(name)))


def features(
    ordered: Sequence[Candidate], analysis: QueryAnalysis, count: int | None = None
) -> list[list[float]]:
    """The `FEATURES` of the first ``count`` candidates (default all) of ``ordered``, all the candidates
    as `score_candidates` returns them (a word's rarity and a file's cover are counted over all)."""
    words = set(analysis.words)
    natural = 0.0 if analysis.identifiers else 1.0
    symbol_query = 1.0 if analysis.symbol else 0.0
    n_words = len(analysis.words) or 1
    # each query word's inverse frequency among the candidates' texts, and the words each file holds
    masks = [int(c.parts.get("text_mask", 0)) for c in ordered]
    bits = [1 << i for i in range(len(analysis.words))]
    idf = [math.log(1.0 + len(ordered) / (1.0 + sum(1 for m in masks if m & bit))) for bit in bits]
    total_idf = sum(idf) or 1.0
    weighted: dict[int, float] = {0: 0.0}
    by_file: dict[str, int] = {}
    for cand, mask in zip(ordered, masks, strict=True):
        if mask:
            path = str(cand.row.get("path"))
            by_file[path] = by_file.get(path, 0) | mask
    starts = [" " + w for w in analysis.words if len(w) >= 3]
    out: list[list[float]] = []
    for position, cand in enumerate(ordered[:count] if count is not None else ordered):
        parts, ranks, row = cand.parts, cand.ranks, cand.row
        path = str(row.get("path") or "")
        kind = row.get("kind")
        (test, auxiliary, vendored, barrel, depth), stem_words, stem_starts = _path_features(path)
        name_starts = _word_starts(str(row.get("name") or ""))
        lines = int(row.get("end_line") or 0) - int(row.get("start_line") or 0) + 1
        vector = parts.get("vector", 0.0)
        exact = parts.get("exact", 0.0)
        text_mask, name_mask = int(parts.get("text_mask", 0)), int(parts.get("name_mask", 0))
        for mask in (text_mask, name_mask):
            if mask not in weighted:
                weighted[mask] = sum(v for v, bit in zip(idf, bits, strict=True) if mask & bit)
        out.append(
            [
                math.log(max(cand.score, 1e-12)),
                parts.get("lexical", 0.0),
                1.0 / (1 + ranks["lexical"]) if "lexical" in ranks else 0.0,
                vector,
                1.0 / (1 + ranks["vector"]) if "vector" in ranks else 0.0,
                1.0 if "symbol" in ranks else 0.0,
                1.0 if len(ranks) == 1 and "vector" in ranks else 0.0,
                parts.get("name", 0.0),
                parts.get("name_cover", 0.0),
                parts.get("text", 0.0),
                parts.get("doc", 0.0),
                parts.get("signature", 0.0),
                parts.get("path", 0.0),
                len(words & stem_words) / len(stem_words) if stem_words else 0.0,
                exact,
                exact * symbol_query,
                1.0 if kind in DEFINITION_KINDS else 0.0,
                1.0 if kind == "module" else 0.0,
                1.0 if kind == "window" else 0.0,
                parts.get("container", 0.0),
                test,
                auxiliary,
                vendored,
                barrel,
                math.log1p(parts.get("file_chunks", 0.0)),
                parts.get("file_best", 0.0),
                parts.get("file_share", 0.0),
                math.log(max(lines, 1)),
                1.0 if row.get("doc") else 0.0,
                vector * natural,
                math.log1p(position),
                depth,
                weighted[text_mask] / total_idf,
                weighted[name_mask] / total_idf,
                by_file.get(path, 0).bit_count() / n_words,
                sum(1 for w in starts if w in name_starts) / n_words,
                sum(1 for w in starts if w in stem_starts) / n_words,
                parts.get("expanded_name", 0.0),
                parts.get("expanded_path", 0.0),
                parts.get("expanded_text", 0.0),
            ]
        )
    return out


def deduplicate(ordered: Sequence[Candidate], limit: int, weights: RankingWeights) -> list[Candidate]:
    """The best ``limit`` of ``ordered`` that do not mostly overlap a better one in the same file.

    Past the first ``weights.same_file_kept`` hits of a file, each further one scores ``weights.same_file``
    times less (with the defaults, 0.5 past 4, a file's sixth hit scores a quarter of its own score), so
    that another file's good chunk is not pushed out of the list by the fifth and sixth chunk of the
    first; with ``same_file`` 0 (a files view) they are left out. Chosen greedily in score order, then
    sorted again; the hits keep their lowered scores.
    """
    kept: list[Candidate] = []
    taken: dict[Any, int] = {}
    floor = -math.inf  # the limit-th best score kept so far: nothing scoring less can enter
    for cand in ordered:
        if len(kept) >= limit and cand.score <= floor:
            break
        if "path" in cand.row and any(
            "path" in k.row and _overlaps(cand.row, k.row, weights.overlap, weights.nested) for k in kept
        ):
            continue
        path = cand.row.get("path")
        if taken.get(path, 0) >= weights.same_file_kept and not weights.same_file:
            continue  # a files view: one hit per file
        taken[path] = taken.get(path, 0) + 1
        if taken[path] > weights.same_file_kept:
            cand.score *= weights.same_file ** (taken[path] - weights.same_file_kept)
        kept.append(cand)
        if len(kept) >= limit:
            floor = sorted((k.score for k in kept), reverse=True)[limit - 1]
    return sorted(kept, key=lambda c: -c.score)[:limit]


FILES_VIEW_NAME = 1.0
"""`RankingWeights.file_name` in a files view: chosen on the tuning half of semble's queries (BENCHMARKS.md,
"semble's own queries")."""


def files_view(weights: RankingWeights) -> RankingWeights:
    """The weights of a search for files (``agentls search --files``): each file once, at its best chunk,
    with the words of its name counting more."""
    return replace(
        weights, same_file=0.0, same_file_kept=1, file_name=max(weights.file_name, FILES_VIEW_NAME)
    )


def rank(
    query: str,
    lexical: Sequence[Mapping[str, Any]],
    vector: Sequence[Mapping[str, Any]],
    limit: int,
    weights: RankingWeights = RankingWeights(),
    symbol: Sequence[Mapping[str, Any]] = (),
) -> list[Candidate]:
    """Fuse, boost, aggregate by file, sort and de-duplicate; at most ``limit`` candidates, best first."""
    ordered, analysis = score_candidates(query, lexical, vector, weights, symbol)
    return deduplicate(impls_after_their_types(rescore(ordered, analysis, weights)), limit, weights)


_TYPE_KINDS = frozenset({"struct", "enum", "union", "trait", "type", "class", "interface"})


def impls_after_their_types(ordered: list[Candidate]) -> list[Candidate]:
    """``ordered`` with each ``impl`` that scores above the definition of its type (same file, same name)
    moved just below it. A Rust impl chunk bears its type's name and holds its methods' words, so it
    matches a query for the type as much as the ``struct`` does, and more; the definition is the answer,
    the impl closely related to it."""
    types: dict[tuple[Any, Any], Candidate] = {}
    for cand in ordered:
        if cand.row.get("kind") in _TYPE_KINDS:
            types.setdefault((cand.row.get("path"), cand.row.get("name")), cand)  # the best of a name
    moved = False
    for cand in ordered if types else ():
        if cand.row.get("kind") == "impl":
            own = types.get((cand.row.get("path"), cand.row.get("name")))
            if own is not None and cand.score >= own.score:
                cand.score = own.score * 0.999
                moved = True
    return sorted(ordered, key=lambda c: -c.score) if moved else ordered  # stable: ties keep their order


@dataclass(frozen=True, slots=True)
class _Model:
    """One of `ranking_model`'s models with feature names resolved to `FEATURES` indexes."""

    coefficients: tuple[tuple[int, float], ...]  # (feature index, coefficient), non-zero only
    trees: tuple[Any, ...]  # nodes (feature index, threshold, left, right); leaves are floats
    rate: float
    score: Callable[[Sequence[float]], float] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "score", _compiled(self.coefficients, self.trees, self.rate))

    @property
    def identity(self) -> bool:
        """Whether the model keeps the hand-weighted score (nothing to compute)."""
        return self.coefficients == ((0, 1.0),) and not self.trees

    def __call__(self, row: Sequence[float]) -> float:
        return self.score(row)


def _compiled(
    coefficients: Sequence[tuple[int, float]], trees: Sequence[Any], rate: float
) -> Callable[[Sequence[float]], float]:
    """The model as one Python function of a feature row, its trees unrolled into conditional
    expressions: walking them node by node took as long as computing the features. Only numbers from
    `ranking_model` (checked) go into the source; the sums run in the same order as a walk would."""

    def expression(node: Any) -> str:
        if isinstance(node, float):
            return repr(rate * node)
        return (
            f"({expression(node[2])} if r[{int(node[0])}] <= {float(node[1])!r} else {expression(node[3])})"
        )

    lines = [
        "def score(r):",
        "    v = 0.0" + "".join(f" + {float(c)!r} * r[{int(i)}]" for i, c in coefficients),
    ]
    lines += [f"    v += {expression(tree)}" for tree in trees]
    lines.append("    return v")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # the source holds numbers from ranking_model only
    score: Callable[[Sequence[float]], float] = namespace["score"]
    return score


@functools.lru_cache(maxsize=4)
def _model(kind: str) -> _Model:
    """`ranking_model`'s model for ``kind`` (``hybrid``: the candidates include nearest vectors;
    ``lexical``), checked against `FEATURES`."""
    coefficients = ranking_model.COEFFICIENTS.get(kind, {"base": 1.0})
    trees = ranking_model.TREES.get(kind, ())
    names: set[str] = set(coefficients)

    def resolve(node: Any) -> Any:
        if isinstance(node, (int, float)):
            return float(node)
        names.add(node[0])
        return (
            FEATURES.index(node[0]) if node[0] in FEATURES else -1,
            float(node[1]),
            *map(resolve, node[2:]),
        )

    resolved = tuple(resolve(t) for t in trees)
    unknown = names - set(FEATURES)
    if unknown:
        raise ValueError(f"indexing/ranking_model.py names unknown features {sorted(unknown)}: refit it")
    return _Model(
        tuple((FEATURES.index(n), float(c)) for n, c in coefficients.items() if c),
        resolved,
        float(ranking_model.RATE),
    )


def rescore(ordered: list[Candidate], analysis: QueryAnalysis, weights: RankingWeights) -> list[Candidate]:
    """The first `ranking_model.TOP` of ``ordered`` re-scored by the learned model and re-sorted; the
    rest follow in their order, below them. The hybrid model when the nearest vectors brought any of
    them, else the lexical one. ``weights.learned`` scales the model's departure from the
    hand-weighted score (0: ``ordered`` unchanged)."""
    if not weights.learned or not ordered:
        return ordered
    head = ordered[: ranking_model.TOP]
    model = _model("hybrid" if any("vector" in c.ranks for c in head) else "lexical")
    if model.identity:
        return ordered
    for cand, row in zip(head, features(ordered, analysis, len(head)), strict=True):
        cand.score = math.exp(row[0] + weights.learned * (model(row) - row[0]))
    rest = ordered[len(head) :]
    if rest:
        # below the re-scored head, in the same order
        floor = min(c.score for c in head) / max(rest[0].score, 1e-12) * 0.999
        for cand in rest:
            cand.score *= min(floor, 1.0)
    return sorted(head, key=lambda c: -c.score) + rest  # stable: ties keep the hand-weighted order


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
