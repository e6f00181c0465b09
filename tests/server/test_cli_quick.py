"""The command line's quick search path (`server.cli.quick`): which command lines it takes, and which it
leaves to the full ``agentls`` group (so that the group's own parsing and errors stay the only ones)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from server.cli.quick import SearchCard, _parse, _parse_index, find_root, inputs_digest, quick_search


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        (["search", "parse args"], ("parse args", ".", 10, False, False)),
        (["search", "q", "--path", "src", "-k", "3", "--json"], ("q", "src", 3, True, False)),
        (["search", "--path=src", "-k7", "q", "--no-refresh"], ("q", "src", 7, False, False)),
        (["search", "--limit=1000", "--", "-v"], ("-v", ".", 1000, False, False)),
        (["search", "where are routes", "--files", "-k", "5"], ("where are routes", ".", 5, False, True)),
    ],
)
def test_takes_plain_searches(args: list[str], parsed: tuple[str, str, int, bool, bool]) -> None:
    assert _parse(args) == parsed


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["index"],
        ["-v", "search", "q"],
        ["search", "q", "--refresh"],
        ["search", "q", "--help"],
        ["search", "q", "-k", "0"],
        ["search", "q", "-k", "1001"],
        ["search", "q", "-k", "abc"],
        ["search", "q", "-k", "²"],  # a digit, not a decimal one: int() refuses it
        ["search", "q", "-k=3"],
        ["search", "q", "--path"],
        ["search"],
        ["search", "one", "two"],
        ["search", "q", "--jsonx"],
    ],
)
def test_leaves_everything_else_to_the_group(args: list[str]) -> None:
    assert _parse(args) is None


def test_a_card_holds_only_while_the_workspace_settings_files_are_unchanged(tmp_path: Path) -> None:
    root, cache = tmp_path / "ws", tmp_path / "cache"
    root.mkdir()
    card = SearchCard(
        str(root), inputs_digest(root, cache), str(tmp_path / "idx"), "f" * 32, 600.0, "model2vec", [], "{}"
    )
    card.save(cache)
    assert SearchCard.load(cache, root) == card
    (root / "pyproject.toml").write_text("[tool.agentls.index]\nsearch_process_idle = 0\n")
    assert SearchCard.load(cache, root) is None
    card = dataclasses.replace(card, inputs=inputs_digest(root, cache))
    card.save(cache)
    assert SearchCard.load(cache, root) == card
    (cache / "models" / "distilled-minilm").mkdir(parents=True)  # a model installed since: card retired
    assert SearchCard.load(cache, root) is None
    # No card, no search process: the full group runs the command.
    assert quick_search(["search", "q", "--path", str(root)], {"AGENTLS_CACHE_DIR": str(cache)}) is None


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        (["index"], (".", False, False)),
        (["index", "src", "-q", "--json"], ("src", True, True)),
        (["index", "--quiet", "--engine", "local"], (".", True, False)),
        (["index", "--to", "s3://b/p"], None),
        (["index", "--engine", "ray"], None),
        (["index", "a", "b"], None),
        (["index", "--help"], None),
        (["search", "q"], None),
    ],
)
def test_takes_plain_index_runs_only(args: list[str], parsed: tuple[str, bool, bool] | None) -> None:
    assert _parse_index(args) == parsed


def test_a_folder_indexed_on_its_own_before_its_project_does_not_shadow_the_project(tmp_path: Path) -> None:
    """`search --path src` in a project never indexed indexes src alone; once the project is indexed, its
    index answers for src too (src's own would be stale from then on)."""
    from indexing.paths import default_index_location

    root, cache = tmp_path / "ws", tmp_path / "cache"
    (root / "src" / "pkg").mkdir(parents=True)
    default_index_location(root / "src", cache).mkdir(parents=True)
    assert find_root(root / "src" / "pkg", cache) == root / "src"
    default_index_location(root, cache).mkdir(parents=True)
    assert find_root(root / "src" / "pkg", cache) == root
    assert find_root(root / "src", cache) == root
    # An index of a folder above a project (a home folder, /) does not swallow it: .git bounds it.
    (root / "src" / "pkg" / ".git").mkdir()
    assert find_root(root / "src" / "pkg", cache) == root / "src" / "pkg"
