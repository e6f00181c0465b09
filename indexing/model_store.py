"""Static embedding models on this machine: fetch one (`pull_model`), list them, and tell which is in use.

``agentls model pull [NAME]`` and ``agentls model list`` are built on this module.

- *Pull*: a model2vec model (``config.json``, ``model.safetensors``, ``tokenizer.json``; ``README.md``
  and ``modules.json`` when present) is fetched into ``cache_dir/models/<NAME with "/" as "--">``, the
  folder `indexing.embeddings` looks in first. The source is the Hugging Face hub
  (``{endpoint}/{NAME}/resolve/main/{file}``; ``HF_ENDPOINT`` or ``--from URL`` names another server
  with the same layout, a mirror or a local stand-in) or a local folder (``--from DIR``: copied, no
  network). Every file is checked against the checksum the server announces (the hub's
  ``X-Linked-Etag``/``ETag``: sha256 for large files, the git blob id for small ones); a mismatch, a
  missing required file or a folder model2vec cannot load fails the pull and leaves nothing behind. The
  model is assembled in a staging folder and moved into place at the end, with an
  ``agentls-model.json`` manifest (source, files, sizes, sha256).
- *List*: the models under ``cache_dir/models``, the configured model when the Hugging Face cache has it,
  and the one `indexing.embeddings.load_embedder` would use for given settings (`active_model`).

- *Offer*: `ModelOffer` asks the hub, in the background while `agentls index` runs, whether the default
  model can be fetched from here; when no model is on the machine and the hub answers, `agentls index`
  says once per machine that `agentls model pull` would bring vectors (remembered in
  ``cache_dir/model-offer.json``). Never in CI (``CI`` set), never with ``HF_HUB_OFFLINE``, never waiting
  on a slow or absent network: a probe that has not answered when the index run ends offers nothing, and
  a hub that answered no (or failed) is not asked again for a day.

Nothing here runs while indexing or searching: agentls never downloads a model unless asked.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from indexing.config import EmbeddingSettings
from indexing.embeddings import (
    DEFAULT_MODEL,
    _resolve_model,
    hf_hub_cache,
    model_cache_path,
    model_path,
    staged_folder,
    stand_in_model,
)

__all__ = [
    "DEFAULT_ENDPOINT",
    "MODEL_FILES",
    "InstalledModel",
    "ModelOffer",
    "ModelPullError",
    "active_model",
    "installed_models",
    "model_present",
    "pull_model",
]

DEFAULT_ENDPOINT = "https://huggingface.co"
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
"""What a model2vec model needs; `pull_model` fails without any of them."""
OPTIONAL_FILES = ("README.md", "modules.json")
MANIFEST = "agentls-model.json"
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)

Progress = Callable[[str, int, int | None], None]
"""``progress(file, bytes_done, bytes_total or None)``."""


class ModelPullError(Exception):
    """The pull failed; the message says what happened and what to do. Nothing was installed."""


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """A model folder on this machine."""

    name: str  # the model's name as configured (``minishlab/potion-code-16M``) or its folder name
    path: Path
    bytes: int
    source: str = ""  # where `pull_model` got it from; "" for models it did not fetch


def _endpoint(source: str | None, env: Mapping[str, str]) -> str:
    return (source or env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _announced_checksum(response: httpx.Response) -> str:
    """The checksum a hub-like server announces for a file: ``X-Linked-Etag`` (on the redirect of a large
    file) or ``ETag``, when it is a sha256 or a git blob id; "" when none is announced."""
    for resp in (*response.history, response):
        for header in ("x-linked-etag", "etag"):
            value = resp.headers.get(header, "").removeprefix("W/").strip('"').lower()
            if _HEX.fullmatch(value):
                return value
    return ""


def _check(name: str, expected: str, sha256: str, blob_sha1: str, url: str) -> None:
    if expected and expected not in (sha256, blob_sha1):
        raise ModelPullError(
            f"{name} from {url} does not match its checksum ({expected}, got sha256 {sha256}); the download "
            "was corrupted or the server sent another file. Nothing was installed; run the pull again"
        )


def _download(
    client: httpx.Client, url: str, dest: Path, name: str, progress: Progress
) -> tuple[int, str] | None:
    """Stream ``url`` into ``dest``, checking the announced checksum; None when the server has no such
    file (404). Returns the size and sha256."""
    with client.stream("GET", url) as response:
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise ModelPullError(
                f"{url} answered HTTP {response.status_code}; check the model's name and that the server "
                "is reachable (or pass --from DIR with a local copy of the model)"
            )
        total = response.headers.get("content-length")
        size = int(total) if total and total.isdigit() else None
        sha = hashlib.sha256()
        done = 0
        with dest.open("wb") as out:
            for block in response.iter_bytes(1 << 20):
                out.write(block)
                sha.update(block)
                done += len(block)
                progress(name, done, size)
        expected = _announced_checksum(response)
    blob = ""
    if len(expected) == 40:  # a git blob id (the hub's ETag of a file kept outside LFS: small ones)
        blob = hashlib.sha1(f"blob {done}\0".encode() + dest.read_bytes()).hexdigest()
    _check(name, expected, sha.hexdigest(), blob, url)
    return done, sha.hexdigest()


def _fetch_http(
    name: str, endpoint: str, staging: Path, progress: Progress, transport: httpx.BaseTransport | None
) -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = {}
    with httpx.Client(timeout=_TIMEOUT, follow_redirects=True, transport=transport) as client:
        for file in (*MODEL_FILES, *OPTIONAL_FILES):
            url = f"{endpoint}/{name}/resolve/main/{file}"
            try:
                got = _download(client, url, staging / file, file, progress)
            except httpx.HTTPError as exc:
                raise ModelPullError(
                    f"could not download {url}: {exc.__class__.__name__}: {exc}. Check the network (or "
                    "HF_ENDPOINT), or copy the model folder to this machine and pass --from DIR"
                ) from exc
            if got is None:
                if file in MODEL_FILES:
                    raise ModelPullError(
                        f"{endpoint} has no {file} for {name!r}: it is not a model2vec static model (or the "
                        "name is wrong); `agentls model pull` takes models such as "
                        f"{DEFAULT_MODEL}"
                    )
                (staging / file).unlink(missing_ok=True)
                continue
            files[file] = {"bytes": got[0], "sha256": got[1]}
    return files


def _copy_folder(folder: Path, staging: Path, progress: Progress) -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = {}
    for file in (*MODEL_FILES, *OPTIONAL_FILES):
        src = folder / file
        if not src.is_file():
            if file in MODEL_FILES:
                raise ModelPullError(
                    f"{folder} has no {file}: not a model2vec model folder (it needs "
                    f"{', '.join(MODEL_FILES)})"
                )
            continue
        shutil.copyfile(src, staging / file)
        size = src.stat().st_size
        sha = hashlib.sha256()
        with (staging / file).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        progress(file, size, size)
        files[file] = {"bytes": size, "sha256": sha.hexdigest()}
    return files


def pull_model(
    name: str,
    cache_dir: Path,
    *,
    env: Mapping[str, str],
    source: str | None = None,
    progress: Progress = lambda _f, _d, _t: None,
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Fetch the model2vec model ``name`` into ``cache_dir/models`` and return its folder.

    ``source``: a local folder holding the model (copied), or the base URL of a hub-like server; default
    ``HF_ENDPOINT`` or the Hugging Face hub. An installed model of the same name is replaced only once
    the new one is complete and loads. Raises `ModelPullError`.
    """
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", name) or ".." in name:
        raise ModelPullError(f"{name!r} is not a model name; give one like {DEFAULT_MODEL}")
    target = model_cache_path(cache_dir, name)
    with staged_folder(target, "pull") as staging:
        folder = Path(source).expanduser() if source and "://" not in source else None
        if folder is not None:
            if not folder.is_dir():
                raise ModelPullError(f"--from {source}: no such folder (nor a URL: give http://...)")
            origin = str(folder.resolve())
            files = _copy_folder(folder, staging, progress)
        else:
            origin = _endpoint(source, env)
            files = _fetch_http(name, origin, staging, progress, transport)
        _check_loads(staging)
        manifest = {"name": name, "source": origin, "pulled": int(time.time()), "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def _check_loads(folder: Path) -> None:
    from indexing.embeddings import Model2VecEmbedder

    try:
        Model2VecEmbedder.load(folder).embed(["def parse(): pass"])
    except Exception as exc:  # EmbeddingError, or whatever model2vec raises on foreign files
        raise ModelPullError(f"the downloaded files do not load as a model2vec model: {exc}") from exc


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def installed_models(
    cache_dir: Path, env: Mapping[str, str], settings: EmbeddingSettings
) -> list[InstalledModel]:
    """The models in ``cache_dir/models`` (pulled, distilled or copied there), then the configured model
    when it lives elsewhere (a folder, or the Hugging Face cache)."""
    models: list[InstalledModel] = []
    root = Path(cache_dir) / "models"
    if root.is_dir():
        for folder in sorted(root.iterdir()):
            if folder.name.startswith(".") or not (folder / "config.json").is_file():
                continue
            name, source = folder.name.replace("--", "/"), ""
            try:
                manifest = json.loads((folder / MANIFEST).read_text())
                name, source = str(manifest.get("name") or name), str(manifest.get("source") or "")
            except (OSError, ValueError):
                pass
            models.append(InstalledModel(name, folder, _folder_bytes(folder.resolve()), source))
    configured = active_model(settings, cache_dir, env)
    if configured is not None and all(m.path.resolve() != configured.resolve() for m in models):
        models.append(InstalledModel(settings.model, configured, _folder_bytes(configured)))
    return models


def active_model(settings: EmbeddingSettings, cache_dir: Path, env: Mapping[str, str]) -> Path | None:
    """The folder `load_embedder` would load for local ``settings`` (not loading it); None when search
    would be lexical or the provider is remote."""
    if settings.provider not in ("model2vec", "sentence-transformers"):
        return None
    folder = _resolve_model(settings.model, cache_dir, env)
    if folder is None and settings.provider == "model2vec" and settings.model == DEFAULT_MODEL:
        folder = stand_in_model(cache_dir)
    return folder


def model_present(settings: EmbeddingSettings, cache_dir: Path, env: Mapping[str, str]) -> bool:
    """Whether a local model for ``settings`` is on disk, judged from folders only: cheap enough for every
    search (`active_model` imports huggingface_hub, a second on a loaded machine)."""
    if settings.provider not in ("model2vec", "sentence-transformers"):
        return False
    model = settings.model
    if model_path(model) is not None or model_cache_path(cache_dir, model).is_dir():
        return True
    if settings.provider == "model2vec" and model == DEFAULT_MODEL and stand_in_model(cache_dir) is not None:
        return True
    snapshots = hf_hub_cache(env) / f"models--{model.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


OFFER_FILE = "model-offer.json"
"""In the cache folder: when the offer of `agentls model pull` was made on this machine (it is made once)."""
_PROBE_TIMEOUT = httpx.Timeout(3.0)
_RETRY_UNANSWERED = 24 * 3600.0  # seconds before a hub that did not answer is asked again


class ModelOffer:
    """The one-time offer of `agentls model pull`, decided without blocking the command that makes it.

    `start` checks what is cheap (CI, offline, provider, a model on disk, an offer already made) and, if an
    offer may be due, asks the hub in a daemon thread whether the model's ``config.json`` is there (one
    small GET, 3 s at most). `message` then returns the offer only if that answer came within a second of
    `start` (a longer command does not wait for it), and records that it was made: no later run makes it."""

    def __init__(self, settings: EmbeddingSettings, cache_dir: Path, env: Mapping[str, str]) -> None:
        self.settings = settings
        self.cache_dir = Path(cache_dir)
        self.env = env
        self._reachable: bool | None = None
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def _due(self) -> bool:
        env, settings = self.env, self.settings
        if env.get("CI", "").lower() not in ("", "0", "false"):
            return False
        if env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
            return False
        if settings.provider != "model2vec" or self._remembered():
            return False
        return not model_present(settings, self.cache_dir, env)

    def _remembered(self) -> bool:
        """The offer was made here, or the hub did not answer in the last day (asked again after that)."""
        try:
            record = json.loads((self.cache_dir / OFFER_FILE).read_text())
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return True  # unreadable: better no offer than one on every run
        if not isinstance(record, dict) or record.get("offered"):
            return True
        return time.time() - float(record.get("unanswered_at", 0)) < _RETRY_UNANSWERED

    def _remember(self, record: Mapping[str, object]) -> bool:
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            (self.cache_dir / OFFER_FILE).write_text(json.dumps(record) + "\n")
        except OSError:
            return False
        return True

    def url(self) -> str:
        return f"{_endpoint(None, self.env)}/{self.settings.model}/resolve/main/config.json"

    def start(self) -> ModelOffer:
        self._started = time.monotonic()
        if self._due():
            self._thread = threading.Thread(target=self._probe, name="agentls-model-offer", daemon=True)
            self._thread.start()
        return self

    def _probe(self) -> None:
        try:
            response = httpx.get(self.url(), timeout=_PROBE_TIMEOUT, follow_redirects=True)
            self._reachable = response.status_code < 400
        except httpx.HTTPError:
            self._reachable = False

    def message(self, within: float = 1.0) -> str | None:
        """The offer, once per machine, when the hub answered within ``within`` seconds of `start` (a
        command that took longer does not wait at all); None otherwise."""
        if self._thread is None:
            return None
        self._thread.join(max(0.0, self._started + within - time.monotonic()))
        if self._reachable is False:  # answered "no" or failed: not asked again for a day
            self._remember({"unanswered_at": time.time(), "model": self.settings.model})
            return None
        if not self._reachable or not self._due():
            return None
        record = {"offered": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "model": self.settings.model}
        if not self._remember(record):
            return None  # an offer that cannot be remembered would be repeated on every run: make none
        return (
            f"{_endpoint(None, self.env)} is reachable: `agentls model pull` fetches the code model "
            f"{self.settings.model} (about 30 MB) and the next `agentls index` adds vector search. "
            "Said once on this machine."
        )
