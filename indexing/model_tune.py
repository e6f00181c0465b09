"""Fine-tune a model2vec static model on (doc comment, code) pairs, so prose finds the code it describes.

``agentls model tune`` is built on this module; it needs torch (the ``distill`` extra), which the default
install does not bring.

A model2vec model is a table of one vector per tokenizer id; a text's vector is the mean of its tokens'
rows, normalised. `tune_model` trains that table contrastively: for a batch of pairs, the doc comment's
vector should be closer to its own code's vector than to the batch's other codes (InfoNCE with in-batch
negatives, both directions, temperature `TuneSettings.temperature`; Adam on the rows a batch uses), with
a pull of those rows back towards the starting table after each step (`TuneSettings.anchor`) so words
the pairs rarely show keep their meaning. The code side is what the index embeds
(`indexing.service.embedding_text`: path, qualified name, code, cut at 2,000 characters); the doc side
is the doc comment's first paragraph, what a search query paraphrases. Pairs come from
`indexing.code_pairs` (JSON lines with ``doc``, ``code``, ``name``, ``path``, or source folders). The
result is saved in the same model2vec layout (tokenizer and config copied, new ``model.safetensors``
holding the table half-way between the start and the trained one, `TuneSettings.blend`), written
beside the target and moved into place at the end, so `indexing.embeddings.Model2VecEmbedder` loads it
unchanged and no reader sees half a model.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexing.code_pairs import doc_summary, folder_pairs
from indexing.embeddings import EmbeddingError, staged_folder

logger = logging.getLogger(__name__)

__all__ = ["TuneReport", "TuneSettings", "read_pairs", "tune_model"]

_MAX_CHARS = 2000
_MAX_TOKENS = 512


@dataclass(frozen=True)
class TuneSettings:
    epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 0.02
    temperature: float = 0.05
    anchor: float = 0.01
    """After each step, the rows the batch used move this fraction of the way back to the starting
    table."""
    blend: float = 0.5
    """The saved table is start + blend x (trained - start): half-way keeps the general words' sense; on the
    retrieval benchmark's tuning split the vector leg scored 0.724 half-way against 0.718 fully trained."""
    max_pairs: int = 0
    """Use at most this many pairs (0: all)."""
    seed: int = 0


@dataclass(frozen=True)
class TuneReport:
    pairs: int
    steps: int
    seconds: float
    loss_first: float
    loss_last: float


def read_pairs(sources: Sequence[Path]) -> Iterator[tuple[str, str]]:
    """(doc text, code text) of each pair in JSON-lines files or source folders, the code as the index
    would embed it."""
    from indexing.service import embedding_text

    for source in sources:
        source = Path(source)
        if source.is_dir():
            for pair in folder_pairs(source):
                yield doc_summary(pair.doc), embedding_text(pair.path, pair.name, pair.code, _MAX_CHARS)
            continue
        if not source.is_file():
            raise EmbeddingError(f"no pairs at {str(source)!r}: pass a JSON-lines file or a source folder")
        with source.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    row = json.loads(line)
                    doc, code = str(row["doc"]), str(row["code"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise EmbeddingError(
                        f"{source}:{number}: not a pair ({exc}); each line must be a JSON object with "
                        '"doc" and "code" (`python -m indexing.code_pairs` writes them)'
                    ) from exc
                name = str(row.get("name") or "")
                yield doc_summary(doc), embedding_text(str(row.get("path") or ""), name, code, _MAX_CHARS)


def _tokens(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    return [e.ids[:_MAX_TOKENS] or [0] for e in encodings]


def tune_model(
    source: Path,
    pairs: Iterable[tuple[str, str]],
    out_dir: Path,
    settings: TuneSettings | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> TuneReport:
    """Train `source`'s table on `pairs` and save the model at `out_dir` (replaced if there)."""
    settings = settings or TuneSettings()
    try:
        import torch
        from safetensors.numpy import load_file, save_file
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EmbeddingError(
            f"tuning needs {exc.name}: install a CPU torch, e.g. "
            "`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`, "
            "then `pip install 'agentls[distill]'`"
        ) from exc
    source = Path(source).expanduser()
    weights_file = source / "model.safetensors"
    if not weights_file.is_file() or not (source / "tokenizer.json").is_file():
        raise EmbeddingError(
            f"{str(source)!r} is not a model2vec model folder (model.safetensors and tokenizer.json "
            "expected); `agentls model distill` builds one"
        )
    say = progress or (lambda _message: None)
    tensors = load_file(str(weights_file))
    key = "embeddings" if "embeddings" in tensors else next(iter(tensors))
    table = tensors[key]
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))

    data = list(pairs)
    rng = random.Random(settings.seed)
    rng.shuffle(data)
    if settings.max_pairs:
        data = data[: settings.max_pairs]
    if len(data) < 2:
        raise EmbeddingError(f"tuning needs at least 2 pairs, got {len(data)}")
    say(f"tokenising {len(data)} pairs")
    docs = _tokens(tokenizer, [d for d, _ in data])
    codes = _tokens(tokenizer, [c for _, c in data])

    torch.manual_seed(settings.seed)
    start = torch.from_numpy(table.astype(np.float32))
    embedding = torch.nn.EmbeddingBag(start.shape[0], start.shape[1], mode="mean", sparse=True)
    with torch.no_grad():
        embedding.weight.copy_(start)
    # Adam on the rows a batch uses, written out: torch.optim's first use imports torch._dynamo (2.5 s)
    moment = torch.zeros_like(start)
    second = torch.zeros_like(start)
    beta1, beta2 = 0.9, 0.999

    def adam_step(step: int) -> None:
        grad = embedding.weight.grad
        assert grad is not None
        grad = grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
        with torch.no_grad():
            moment[rows] = beta1 * moment[rows] + (1 - beta1) * values
            second[rows] = beta2 * second[rows] + (1 - beta2) * values * values
            corrected = moment[rows] / (1 - beta1**step)
            scale = (second[rows] / (1 - beta2**step)).sqrt() + 1e-8
            embedding.weight[rows] -= settings.learning_rate * corrected / scale
        embedding.weight.grad = None

    def encode(batch: list[list[int]]) -> tuple[Any, Any]:
        flat = torch.tensor([i for ids in batch for i in ids], dtype=torch.long)
        offsets = torch.tensor(np.cumsum([0] + [len(ids) for ids in batch[:-1]]), dtype=torch.long)
        return torch.nn.functional.normalize(embedding(flat, offsets), dim=-1), flat

    began = time.monotonic()
    steps = 0
    first = last = float("nan")
    order = list(range(len(data)))
    size = min(settings.batch_size, len(data))
    total = settings.epochs * (len(data) // size)
    for _epoch in range(settings.epochs):
        rng.shuffle(order)
        for begin in range(0, len(order) - size + 1, size):
            chosen = order[begin : begin + size]
            doc_vectors, doc_ids = encode([docs[i] for i in chosen])
            code_vectors, code_ids = encode([codes[i] for i in chosen])
            logits = doc_vectors @ code_vectors.T / settings.temperature
            target = torch.arange(len(chosen))
            loss = (
                torch.nn.functional.cross_entropy(logits, target)
                + torch.nn.functional.cross_entropy(logits.T, target)
            ) / 2
            loss.backward()
            steps += 1
            adam_step(steps)
            if (
                settings.anchor
            ):  # pull the rows just moved back towards the start (decoupled, like weight decay)
                rows = torch.unique(torch.cat([doc_ids, code_ids]))
                with torch.no_grad():
                    weight = embedding.weight
                    weight[rows] -= settings.anchor * (weight[rows] - start[rows])
            last = float(loss.detach())
            if steps == 1:
                first = last
            if steps % 50 == 0 or steps == total:
                say(f"step {steps}/{total}: loss {last:.3f}")

    moved = embedding.weight.detach() - start
    trained = (start + settings.blend * moved).numpy().astype(table.dtype)
    out_dir = Path(out_dir)
    with staged_folder(out_dir, "tune") as staging:
        for file in source.iterdir():
            if file.is_file() and file.name not in ("model.safetensors", "agentls-model.json"):
                shutil.copy2(file, staging / file.name)
        save_file({**tensors, key: trained}, str(staging / "model.safetensors"))
        (staging / "agentls-tune.json").write_text(
            json.dumps(
                {"from": str(source), "pairs": len(data), "steps": steps, **settings.__dict__}, indent=1
            )
        )
    return TuneReport(len(data), steps, time.monotonic() - began, first, last)
