"""Typed settings of the indexing package. Every field has a default; the entry point fills them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indexing.models import ParseLimits
from indexing.paths import default_index_location as default_index_location  # re-exported (light home)

EmbeddingProvider = Literal["model2vec", "sentence-transformers", "voyage", "openai", "none"]

_MODEL_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?")
"""A Hugging Face model id, ``name`` or ``org/name``: looked up in the local model caches only."""


def model_folder(value: str, base: Path) -> Path | None:
    """The folder a model setting (``index.embedding.model``, ``index.rerank.model``) names; None: a model
    id (``name`` or ``org/name`` with no such folder under `base`), looked up in the local model caches
    only. A relative folder is read from `base`, the folder of the settings file that sets it: the
    workspace root for the workspace's file and the editor's settings, never the process's working folder
    (``agentls index /path/to/repo`` run from elsewhere reads the same folder). The settings load makes
    such a value absolute (`anchor_model_folders`), so the loader (`indexing.embeddings`) and the
    check of a repository's value (`server.settings_trust`) read the same folder."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if _MODEL_ID.fullmatch(value) and not (base / path).is_dir():
        return None
    return base / path


def anchor_model_folders(raw: Mapping[str, Any], base: Path) -> Mapping[str, Any]:
    """The raw settings `raw` of a file in the folder `base` (the workspace root for the workspace's file
    and the editor's settings), with a relative model folder made absolute (`model_folder`); `raw` itself
    is not changed."""
    index = raw.get("index")
    if not isinstance(index, Mapping):
        return raw
    changed: dict[str, Any] = {}
    for section in ("embedding", "rerank"):
        table = index.get(section)
        value = table.get("model") if isinstance(table, Mapping) else None
        if not isinstance(table, Mapping) or not isinstance(value, str):
            continue
        folder = model_folder(value, base) if not Path(value).expanduser().is_absolute() else None
        if folder is not None:
            changed[section] = {**table, "model": str(folder)}
    return {**raw, "index": {**index, **changed}} if changed else raw


class EmbeddingSettings(BaseModel):
    """Which model turns chunks into vectors."""

    model_config = ConfigDict(extra="forbid")

    provider: EmbeddingProvider = "model2vec"
    """`model2vec` (static, default), `sentence-transformers`, `voyage`, `openai` (any
    OpenAI-compatible `/v1/embeddings` endpoint, Ollama included) or `none` (lexical only)."""
    model: str = "minishlab/potion-code-16M"
    """Model name or local path. For model2vec a Hugging Face id found in the local cache, or a folder (a
    relative one is read from the folder of the settings file that sets it: `model_folder`)."""
    base_url: str | None = None
    """Endpoint for `openai` (e.g. http://localhost:11434/v1 for Ollama) or `voyage`."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (VOYAGE_API_KEY / OPENAI_API_KEY by default)."""
    batch_size: int = Field(default=256, ge=1, le=4096)
    """Chunks per embedding call."""
    max_chars: int = Field(default=2000, ge=64)
    """Chunk text is cut to this many characters before embedding."""


RerankProvider = Literal["none", "cross-encoder", "api"]


class RerankSettings(BaseModel):
    """An optional second stage of search (`indexing.rerank`): re-score the best hits. Off by default."""

    model_config = ConfigDict(extra="forbid")

    provider: RerankProvider = "none"
    """`none` (default), `cross-encoder` (sentence-transformers, from a local folder; never downloads) or
    `api` (a Cohere/Voyage/Jina-style ``/rerank`` endpoint)."""
    model: str = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    """A local folder (a relative one read from the folder of the settings file that sets it:
    `model_folder`) or a Hugging Face id already in the local cache (cross-encoder); the model name the
    endpoint expects (api, e.g. ``rerank-v3.5`` or ``rerank-2-lite``)."""
    url: str | None = None
    """The endpoint for `api`, e.g. https://api.cohere.com/v2/rerank or https://api.voyageai.com/v1/rerank."""
    api_key_env: str | None = None
    """The environment variable holding the endpoint's key (none sent when unset)."""
    candidates: int = Field(default=20, ge=2, le=200)
    """How many of the first stage's best hits are re-scored."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the endpoint (api)."""


class IndexSettings(BaseModel):
    """Where the index lives and what goes into it."""

    model_config = ConfigDict(extra="forbid")

    uri: str | None = None
    """Index folder (a local path, ``~`` expanded, or a ``file://`` URI). Default: the user cache dir, one
    folder per workspace. Object storage and LanceDB Cloud URIs are refused: the index keeps its lock
    and ``meta.json`` as local files beside the tables."""
    max_file_bytes: int = Field(default=1_000_000, ge=1)
    """Files larger than this are skipped as too large."""
    max_line_chars: int = Field(default=2_000, ge=80)
    """A file whose average line is longer than this is skipped as generated (minified)."""
    exclude: list[str] = Field(default_factory=list)
    """Extra gitignore-style patterns to leave out."""
    chunk_max_lines: int = Field(default=150, ge=10)
    """A definition longer than this is split into windows; a class longer than this becomes a skeleton."""
    window_lines: int = Field(default=60, ge=5)
    """Line-window size for files without a chunk query (and for oversized definitions)."""
    window_overlap: int = Field(default=10, ge=0)
    """Lines shared by consecutive windows."""
    batch_files: int = Field(default=1000, ge=1)
    """Files written to the store per batch; progress is committed after each batch. Larger batches
    mean fewer table fragments (faster search) and less write overhead; smaller ones lose less work
    when a run is interrupted."""
    vector_index_min_rows: int = Field(default=20_000, ge=256)
    """Build an ANN vector index once the chunks table has this many rows."""
    compact_after_fragments: int = Field(default=32, ge=2)
    """Compact the tables once they have this many fragments."""
    workers: int = Field(default=0, ge=0)
    """Parser processes; 0 picks one per CPU core."""
    search_process_idle: float = Field(default=600.0, ge=0)
    """Seconds the warm search process that ``agentls search`` starts waits for the next query before it
    exits (``indexing.search_daemon``); 0: none, every search loads the index in its own process."""
    shared: str | None = None
    """A team's shared index on object storage (``s3://bucket/prefix``, ``gs://...``, ``az://...``, or a
    folder), written by ``agentls index --to URI`` (`indexing.shared`): search reads it for the files
    unchanged since its commit, and the local index holds only the others. Credentials come from the
    provider's environment or config (``AWS_*``, ``~/.aws``), never from settings."""
    query_expansion: float = Field(default=0.0, ge=0.0, le=1.0)
    """Rank higher the chunks named with the code words a query's prose words usually name (``minimum``
    -> ``min``; `indexing.expansion`): an expanded word's match counts this fraction of a query word's.
    0 (default): off; it gained nothing on the retrieval benchmark's tuning split (BENCHMARKS.md)."""
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = sorted(k for k in data if isinstance(k, str) and _CREDENTIAL_WORDS.search(k))
            if found:
                raise ValueError(
                    f"index settings carry credentials ({', '.join(found)}): remove them from the settings "
                    "file and use the storage provider's environment or config instead (AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, GOOGLE_APPLICATION_CREDENTIALS, "
                    "AZURE_STORAGE_*)"
                )
        return data

    @field_validator("shared")
    @classmethod
    def _shared_uri(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if "@" in value.split("/", 3)[2 if "://" in value else 0] or "?" in value:
            raise ValueError(
                "index.shared carries credentials or options in the URI: keep only the location "
                "(s3://bucket/prefix) and use the provider's environment or config for credentials"
            )
        return value

    @field_validator("uri")
    @classmethod
    def _local_folder(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme == "file":
            value = value[len("file://") :]
        elif scheme:
            raise ValueError(
                f"{scheme}:// is not supported: the index must be a local folder (it keeps a lock file and "
                "meta.json beside its tables)"
            )
        return str(Path(value).expanduser())

    def location(self, root: Path, cache_dir: Path) -> Path:
        """The index folder of the workspace at ``root``: `uri`, else `default_index_location`."""
        return Path(self.uri) if self.uri else default_index_location(root, cache_dir)

    def parse_limits(self) -> ParseLimits:
        """What parser processes need of these settings, as a plain dataclass."""
        return ParseLimits(
            max_file_bytes=self.max_file_bytes,
            max_line_chars=self.max_line_chars,
            chunk_max_lines=self.chunk_max_lines,
            window_lines=self.window_lines,
            window_overlap=self.window_overlap,
        )


_CREDENTIAL_WORDS = re.compile(r"(secret|password|token|access_key|account_key|sas|credential)", re.I)
