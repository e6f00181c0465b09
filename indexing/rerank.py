"""An optional second stage of search: a re-ranker that re-scores the first stage's best hits.

Off by default (``[index.rerank] provider = "none"``). When on, `WorkspaceIndex.search` ranks as usual,
hands the best ``candidates`` hits (query and chunk text) to the re-ranker and returns them in the order of
its scores; the hits below them keep their order. Two implementations of the `Reranker` protocol:

- `CrossEncoderReranker` (``provider = "cross-encoder"``): a sentence-transformers ``CrossEncoder``
  loaded from a local folder (``model``: a path, or a Hugging Face id already in the local cache). Nothing
  is downloaded: the model loads with the hub switched off, and a model that is not on the machine is an
  error saying where it was looked for and how to bring it.
- `ApiReranker` (``provider = "api"``): an HTTP rerank endpoint of the Cohere / Voyage / Jina kind
  (``POST {url}`` with ``{"model", "query", "documents", "top_n"}``, a bearer key from ``api_key_env``;
  the answer's ``results`` or ``data`` carry ``index`` and ``relevance_score``).

A re-ranker that fails during a search (the endpoint down, a bad answer) is logged and the first stage's
order is returned: search never fails because of its optional stage.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from indexing.config import RerankSettings
from indexing.models import SearchHit
from indexing.secrets import redact_path

__all__ = [
    "ApiReranker",
    "CrossEncoderReranker",
    "RerankError",
    "Reranker",
    "load_reranker",
    "rerank_hits",
]

log = logging.getLogger(__name__)

_MAX_DOC_CHARS = 2000  # chunk text sent per candidate (cross-encoders read ~512 tokens at most)


class RerankError(Exception):
    """The re-ranker cannot be loaded or did not answer; the message says what to do."""


class Reranker(Protocol):
    """Scores each document's relevance to the query; higher is more relevant."""

    def scores(self, query: str, documents: Sequence[str]) -> list[float]: ...


def document_text(hit: SearchHit) -> str:
    """What the re-ranker reads of a hit: its path (a secret value in it withheld:
    `indexing.secrets.redact_path`) and symbol, then its code."""
    head = f"{redact_path(hit.path)} {hit.symbol}".strip()
    return f"{head}\n{hit.text}"[:_MAX_DOC_CHARS]


def rerank_hits(
    reranker: Reranker, query: str, hits: Sequence[SearchHit], candidates: int
) -> list[SearchHit]:
    """The first ``candidates`` hits in the re-ranker's order (its score as the hit's score), then the
    rest; the hits unchanged when the re-ranker fails."""
    head, tail = list(hits[:candidates]), list(hits[candidates:])
    if len(head) < 2:
        return list(hits)
    try:
        scores = reranker.scores(query, [document_text(h) for h in head])
    except RerankError as error:
        log.warning("re-ranking skipped, first-stage order kept: %s", error)
        return list(hits)
    if len(scores) != len(head):
        log.warning("re-ranking skipped: %d scores for %d hits", len(scores), len(head))
        return list(hits)
    order = sorted(range(len(head)), key=lambda i: -scores[i])  # stable: ties keep the first stage's order
    return [dataclasses.replace(head[i], score=round(float(scores[i]), 4)) for i in order] + tail


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder from a local folder; never downloads."""

    def __init__(self, model: str, cache_dir: Path, env: Mapping[str, str], *, device: str = "cpu") -> None:
        from indexing.embeddings import _resolve_model

        folder = _resolve_model(model, cache_dir, env)
        if folder is None or not (folder / "config.json").is_file():
            raise RerankError(
                f"no cross-encoder {model!r} on this machine (looked for a folder with that path, in "
                f"{cache_dir / 'models'} and in the local Hugging Face cache); nothing is downloaded while "
                "searching. Copy a cross-encoder (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2, fetched with "
                "`huggingface-cli download` on a machine that reaches the hub) into a folder and set "
                '[index.rerank] model = "/that/folder", or set provider = "none"'
            )
        previous = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")  # a local load must not reach out
        try:
            from sentence_transformers import CrossEncoder

            self._model: Any = CrossEncoder(str(folder), device=device, local_files_only=True)
        except ImportError as error:
            raise RerankError(
                "the cross-encoder re-ranker needs sentence-transformers: "
                "pip install 'agentls[sentence-transformers]'"
            ) from error
        except Exception as error:  # a folder that is not a loadable model
            raise RerankError(f"cannot load the cross-encoder in {folder}: {error}") from error
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.folder = folder

    def scores(self, query: str, documents: Sequence[str]) -> list[float]:
        try:
            values = self._model.predict([(query, d) for d in documents], show_progress_bar=False)
        except Exception as error:
            raise RerankError(f"the cross-encoder failed: {error}") from error
        return [float(v) for v in values]


class ApiReranker:
    """A Cohere/Voyage/Jina-style HTTP rerank endpoint."""

    def __init__(self, url: str, model: str, api_key: str | None, *, timeout: float = 10.0) -> None:
        self.url = url
        self.model = model
        import httpx  # only for this re-ranker: 0.1 s of every index process's start otherwise

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout)

    def scores(self, query: str, documents: Sequence[str]) -> list[float]:
        import httpx

        body = {"model": self.model, "query": query, "documents": list(documents), "top_n": len(documents)}
        try:
            response = self._client.post(self.url, json=body)
        except httpx.HTTPError as error:
            raise RerankError(f"the rerank endpoint {self.url} did not answer: {error}") from error
        if response.status_code >= 400:
            raise RerankError(
                f"the rerank endpoint {self.url} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            payload = response.json()
            results = payload.get("results", payload.get("data"))
            out = [float("-inf")] * len(documents)
            for item in results:
                out[int(item["index"])] = float(item["relevance_score"])
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            raise RerankError(f"the rerank endpoint {self.url} sent no scores: {error}") from error
        return out


def load_reranker(settings: RerankSettings, cache_dir: Path, env: Mapping[str, str]) -> Reranker | None:
    """The configured re-ranker, None when off. Raises `RerankError` when it cannot be set up."""
    if settings.provider == "none":
        return None
    if settings.provider == "cross-encoder":
        return CrossEncoderReranker(settings.model, cache_dir, env)
    if not settings.url:
        raise RerankError('[index.rerank] provider = "api" needs url = "https://.../v1/rerank"')
    key = env.get(settings.api_key_env) if settings.api_key_env else None
    if settings.api_key_env and not key:
        raise RerankError(f"the rerank endpoint's key is not set: export {settings.api_key_env}=...")
    return ApiReranker(settings.url, settings.model, key, timeout=settings.timeout)
