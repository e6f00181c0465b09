"""The shared team index on object storage (`indexing.shared`), against real S3- and Azure-compatible
servers started here on 127.0.0.1 (moto's, Microsoft's Azurite) and real LanceDB, git and tree-sitter."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from indexing.config import EmbeddingSettings, IndexSettings
from indexing.service import WorkspaceIndex
from indexing.shared import SharedIndexError, SharedStore, merge_lexical, publish
from tests.object_storage import azure, bucket, gcs, s3
from tests.trusted_settings import trust_workspace_settings

__all__ = ["azure", "bucket", "gcs", "s3"]  # fixtures used below


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _repo(root: Path) -> Path:
    root.mkdir()
    (root / "billing.py").write_text(
        "def compute_invoice_total(lines):\n    return sum(line.amount for line in lines)\n"
    )
    (root / "shipping.py").write_text(
        "def schedule_parcel_pickup(parcel):\n    return parcel.carrier.book()\n"
    )
    (root / "legacy.py").write_text("def obsolete_fax_gateway(number):\n    return number.dial()\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    return root


def _lexical(**extra: object) -> IndexSettings:
    return IndexSettings(embedding=EmbeddingSettings(provider="none"), **extra)  # type: ignore[arg-type]


def test_a_teammate_searches_the_shared_base_and_only_their_changes(tmp_path: Path, bucket: str) -> None:
    uri = f"{bucket}/one"
    publisher = _repo(tmp_path / "publisher")
    (publisher / "billing.py").write_text("def uncommitted_draft():\n    pass\n")  # dirty: not published
    pub = WorkspaceIndex(publisher, _lexical(uri=str(tmp_path / "pub-index")), cache_dir=tmp_path / "c")
    report = publish(pub, uri)
    assert report.dirty and report.files == 3
    assert report.commit == _git(publisher, "rev-parse", "HEAD")

    mine = tmp_path / "mine"
    _git(tmp_path, "clone", "-q", str(publisher), str(mine))
    (mine / "shipping.py").write_text("def schedule_drone_delivery(parcel):\n    return parcel.fly()\n")
    (mine / "legacy.py").unlink()
    (mine / "refunds.py").write_text("def issue_partial_refund(order):\n    return order.refund()\n")
    index = WorkspaceIndex(
        mine, _lexical(uri=str(tmp_path / "my-index"), shared=uri), cache_dir=tmp_path / "c"
    )
    local = index.index()
    assert local.files_indexed == 2  # shipping.py and refunds.py; billing.py comes from the base
    assert isinstance(index.store, SharedStore) and index.store.local.file_count() == 2

    def paths(query: str) -> list[str]:
        return [h.path for h in index.search(query, limit=5)]

    assert paths("compute invoice total")[0] == "billing.py"  # unchanged: from the base
    assert paths("drone delivery")[0] == "shipping.py"  # changed: from the local index
    assert paths("partial refund")[0] == "refunds.py"  # new
    assert "shipping.py" not in paths("pickup")  # the base's old rows are hidden
    assert "legacy.py" not in paths("obsolete fax gateway")  # deleted here
    assert "billing.py" not in paths("uncommitted draft")  # the publisher's dirty tree was not published
    assert [s.path for s in index.find_symbols("schedule_parcel_pickup")] == []
    assert [s.path for s in index.find_symbols("compute_invoice_total")] == ["billing.py"]

    # Back to the base's content: the local copy is dropped, the base's rows count again.
    _git(mine, "checkout", "-q", "--", "shipping.py")
    assert index.index().files_removed >= 1
    assert index.store.local.file_count() == 1
    assert paths("pickup")[0] == "shipping.py"
    index.close()


def test_vectors_are_shared_when_both_sides_use_the_same_model(
    tmp_path: Path, s3: str, model_cache_dir: Path
) -> None:
    from indexing.embeddings import embed_query

    uri = f"{s3}/vectors"
    publisher = _repo(tmp_path / "publisher")
    pub = WorkspaceIndex(
        publisher, IndexSettings(uri=str(tmp_path / "pub-index")), cache_dir=model_cache_dir, env={}
    )
    publish(pub, uri)
    mine = tmp_path / "mine"
    _git(tmp_path, "clone", "-q", str(publisher), str(mine))
    (mine / "shipping.py").write_text("def schedule_drone_delivery(parcel):\n    return parcel.fly()\n")
    index = WorkspaceIndex(
        mine, IndexSettings(uri=str(tmp_path / "my-index"), shared=uri), cache_dir=model_cache_dir, env={}
    )
    assert index.index().vectors == 1  # only the changed file is embedded here
    store = index.store
    assert isinstance(store, SharedStore) and store.base.manifest.embedder == store.local.embedder_id
    assert store.has_vectors

    embedder = index.embedder
    assert embedder is not None
    rows = store.search_vector(embed_query(embedder, "parcel delivery invoice"), limit=10)
    chunks = store.chunks_by_id([r["id"] for r in rows])
    assert sorted(c["path"] for c in chunks) == ["billing.py", "legacy.py", "shipping.py"]  # base + local
    (shipping,) = [c for c in chunks if c["path"] == "shipping.py"]
    assert "drone" in shipping["text"]  # the base's vector of the old shipping.py is hidden
    index.close()


def test_an_open_workspace_follows_a_re_published_base_once_it_has_the_commit(
    tmp_path: Path, s3: str, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"{s3}/moving"
    publisher = _repo(tmp_path / "publisher")
    pub = WorkspaceIndex(publisher, _lexical(uri=str(tmp_path / "pub-index")), cache_dir=tmp_path / "c")
    first = publish(pub, uri).commit
    mine = tmp_path / "mine"
    _git(tmp_path, "clone", "-q", str(publisher), str(mine))
    index = WorkspaceIndex(
        mine, _lexical(uri=str(tmp_path / "my-index"), shared=uri), cache_dir=tmp_path / "c"
    )
    index.index()

    (publisher / "coupons.py").write_text("def redeem_seasonal_coupon(code):\n    return code.apply()\n")
    _git(publisher, "add", "coupons.py")
    _git(publisher, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "coupons")
    second = publish(pub, uri).commit
    assert second != first

    # CI moved the base, this clone has not fetched: it keeps the base it can diff against, and says so.
    with caplog.at_level(logging.WARNING, logger="indexing.shared"):
        index.index()
    assert index.store.commit == first
    assert "git fetch" in caplog.text
    assert [h.path for h in index.search("redeem seasonal coupon", limit=3)][:1] != ["coupons.py"]

    # After a pull the open index reads the new base: coupons.py comes from it, not from a local re-index.
    _git(mine, "pull", "-q", "--ff-only")
    report = index.index()
    assert index.store.commit == second
    assert report.files_indexed == 0 and index.store.local.file_count() == 0
    hits = index.search("redeem seasonal coupon", limit=3)
    assert hits and hits[0].path == "coupons.py"
    index.close()


def test_the_cli_publishes_and_a_missing_base_says_what_to_do(tmp_path: Path, s3: str) -> None:
    from server.cli.main import main

    repo = _repo(tmp_path / "repo")
    (repo / "agentls.toml").write_text('[index]\nembedding = { provider = "none" }\n')  # untracked: clean
    (repo / "legacy.py").write_text("def edited():\n    pass\n")  # a tracked file edited: dirty
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "AGENTLS_SEARCH_PROCESS": "0"}
    result = CliRunner().invoke(main, ["index", str(repo), "--to", f"{s3}/cli", "-q"], env=env)
    assert result.exit_code == 0, result.output
    assert "Shared index of" in result.output and "uncommitted changes" in result.output

    # The same workspace configured with the base: `agentls search` reads it, with legacy.py's edit local.
    (repo / "agentls.toml").write_text(f'[index]\nshared = "{s3}/cli"\nembedding = {{ provider = "none" }}\n')
    trust_workspace_settings(repo, tmp_path / "cache" / "agentls")  # as the user does
    result = CliRunner().invoke(main, ["search", "compute invoice total", "--path", str(repo)], env=env)
    assert result.exit_code == 0, result.output
    assert "billing.py" in result.output
    result = CliRunner().invoke(main, ["search", "obsolete fax gateway", "--path", str(repo)], env=env)
    assert "legacy.py" not in result.output  # committed content, edited here: the base's rows hidden
    result = CliRunner().invoke(main, ["search", "edited", "--path", str(repo)], env=env)
    assert "legacy.py" in result.output

    missing = WorkspaceIndex(
        repo, _lexical(uri=str(tmp_path / "i"), shared=f"{s3}/nothing-here"), cache_dir=tmp_path / "c"
    )
    with pytest.raises(SharedIndexError, match="agentls index --to"):
        missing.search("invoice")


def test_settings_refuse_credentials() -> None:
    with pytest.raises(ValidationError, match="use the storage provider's environment"):
        IndexSettings.model_validate({"shared": "s3://team/x", "aws_secret_access_key": "abc"})
    with pytest.raises(ValidationError, match="credentials or options in the URI"):
        IndexSettings(shared="s3://key:secret@team/x")
    assert IndexSettings(shared=" s3://team/x ").shared == "s3://team/x"


def test_lexical_lists_meet_on_their_own_best_score() -> None:
    base = [{"id": "b1", "_score": 20.0}, {"id": "b2", "_score": 10.0}]
    local = [{"id": "l1", "_score": 2.0}, {"id": "l2", "_score": 0.5}]
    assert [r["id"] for r in merge_lexical(base, local, 3)] == ["b1", "l1", "b2"]
