"""Helpers shared by the command-line modules: the environment the group read, which workspace a path
belongs to, and its settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from server.cli.quick import find_root as find_root  # re-exported: its home is the light quick path
from server.settings import Settings, load_settings


def environment() -> dict[str, str]:
    """The environment the ``agentls`` group read when the command started (``main._read_environment``)."""
    obj = click.get_current_context().find_root().obj
    if not isinstance(obj, dict):
        raise RuntimeError("agentls commands run inside the `agentls` group, which reads the environment")
    return obj


def workspace_settings(
    root: Path, err: Console, messages: list[str] | None = None, *, strict: bool = False
) -> Settings:
    """The workspace's settings; each ignored setting is reported on ``err`` (and added to ``messages``).

    ``strict`` (the commands that spend on a model: run, implement, runs resume, batch): a settings file
    that cannot be parsed at all stops the command, since its budget, approval and network settings would
    otherwise be dropped silently for a paid run."""
    loaded = load_settings(root)
    if strict and loaded.unreadable:
        raise click.ClickException(
            f"{'; '.join(loaded.unreadable)}. Fix the file: an agent run does not start without the "
            "budget, approval and network settings it may hold."
        )
    if messages is not None:
        messages.extend(loaded.messages)
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
