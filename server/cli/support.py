"""Helpers shared by the command-line modules: the environment the group read, which workspace a path
belongs to, and its settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from server.settings import Settings, load_settings


def environment() -> dict[str, str]:
    """The environment the ``agentls`` group read when the command started (``main._read_environment``)."""
    obj = click.get_current_context().find_root().obj
    if not isinstance(obj, dict):
        raise RuntimeError("agentls commands run inside the `agentls` group, which reads the environment")
    return obj


def find_root(target: Path, cache: Path) -> Path:
    """The workspace a path belongs to: the nearest folder at or above ``target`` that already has an
    index, else the nearest with ``.git`` or ``agentls.toml``, else ``target``'s own folder."""
    from indexing.config import default_index_location  # not the service: it loads LanceDB

    start = target if target.is_dir() else target.parent
    folders = (start, *start.parents)
    for folder in folders:
        if default_index_location(folder, cache).exists():
            return folder
    for folder in folders:
        if (folder / ".git").exists() or (folder / "agentls.toml").exists():
            return folder
    return start


def workspace_settings(root: Path, err: Console) -> Settings:
    """The workspace's settings; each ignored setting is reported on ``err``."""
    loaded = load_settings(root)
    for message in loaded.messages:
        err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)
    return loaded.settings


def engine_options(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--engine local|ray`` (`help_text` says what each does) and ``--address``, for commands Ray runs."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--address", default=None, help="With --engine ray: the cluster (HOST:PORT, ray://...)."
        )(command)
        return click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help=help_text,
        )(command)

    return decorate
