"""``agentls settings [--path PATH] [--trust [--yes]]``: where a workspace's settings come from, and the
user's trust in the sensitive settings of its own file (`server.settings_trust`).

Without ``--trust`` it lists the files read (the user's own, then the workspace's), the lists that the
files' values add up to (`server.settings_files.COMBINED`: ``index.exclude``), each part with the file it
comes from, and each sensitive setting the workspace's file sets, with its value (credentials in URLs
masked) and whether it applies (not trusted, the part of it that needs no trust applies meanwhile:
`server.settings_trust.safe_part`).
``--trust`` shows the same, asks on the terminal (``--yes``: without asking, which is needed without a
terminal) and remembers the fingerprint of exactly those values for that workspace; a value changed,
added or removed later is dropped again until trusted again. A trust file that cannot be written is an
error naming the file and why (exit status 1): the values stay ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import click

from server.cli.support import environment, workspace_of

__all__ = ["settings_cmd"]


@click.command("settings")
@click.option("--path", "path", default=".", help="The workspace (or a folder inside it).")
@click.option(
    "--trust",
    is_flag=True,
    help="Trust the sensitive settings of the workspace's own agentls.toml or pyproject.toml, then exit.",
)
@click.option("--yes", "-y", is_flag=True, help="With --trust: trust them without asking.")
def settings_cmd(path: str, trust: bool, yes: bool) -> None:
    """Show the settings files of a workspace and its sensitive settings; --trust trusts them."""
    from server.cli.agent import _stdin_is_terminal
    from server.cli.support import BadValue
    from server.settings import user_settings, workspace_settings
    from server.settings_trust import (
        fingerprint,
        safe_part,
        sensitive_values,
        settings_trust,
        shown,
        user_settings_file,
    )

    if yes and not trust:
        raise BadValue("only goes with --trust", click.get_current_context(), param_hint="--yes")
    env = environment()
    root, _ = workspace_of(path, env)
    user = user_settings_file(env)
    click.echo(f"your settings: {user}{'' if user.is_file() else ' (none)'}")
    raw, messages, sources = workspace_settings(root)
    for message in messages:
        click.echo(f"warning: {message}", err=True)
    if not sources:
        click.echo(f"the workspace's settings: none ({root} has no agentls.toml or [tool.agentls])")
        _combined(root, env)
        return
    click.echo(f"the workspace's settings: {sources[0]}")
    _combined(root, env)
    found = sensitive_values(raw, root, user_settings(user)[0])  # as the settings are loaded
    if not found:
        click.echo("it sets no sensitive setting: all of it applies")
        return
    store = settings_trust(env)
    trusted = store.has(root, fingerprint(found))
    state = "trusted for this workspace" if trusted else "not trusted: ignored"
    click.echo(f"its sensitive settings ({state}):")
    for item in found:
        click.echo(f"  {item.key} = {shown(item.value)}  (could {item.why})")
        if not trusted and (part := safe_part(item)):
            click.echo(f"    meanwhile its other entries apply: {shown(part)}")
    if not trust or trusted:
        if not trusted:
            click.echo(f"to trust them: agentls settings --trust --path {root}")
        return
    if not yes and not _stdin_is_terminal():
        raise click.ClickException(
            "trusting them needs your confirmation and there is no terminal to ask on; run this in a "
            "terminal, or add --yes to trust them without asking"
        )
    if yes or click.confirm(f"Trust these values for {root}?", default=False):
        kept = store.add(root, fingerprint(found), settings=sources[0])
        if not kept.kept:
            said = kept.message("not trusted, as", "They stay ignored", "and run this again")
            raise click.ClickException(said)
        click.echo("trusted: they apply from now on (until one of them changes)")
    else:
        click.echo("not trusted: they stay ignored")


def _combined(root: Path, env: Mapping[str, str]) -> None:
    """Each list setting whose files' values add up (`server.settings_files.COMBINED`), as the settings are
    loaded: each file's part (the workspace's without what waits for the trust), then the whole."""
    from server.settings_files import COMBINED, applied_files
    from server.settings_trust import shown

    files = applied_files(root, env)[::-1]  # the user's own first: the order the parts are added in
    for key in sorted(COMBINED):
        parts = [(file.path, value) for file in files if isinstance(value := file.value(key), list) and value]
        if not parts:
            continue
        click.echo(f"{'.'.join(key)}: the lists of your settings and the workspace's add up, in this order:")
        for path, value in parts:
            click.echo(f"  {shown(value)}  from {path}")
        whole = [entry for _, value in parts for entry in value]
        click.echo(f"  = {shown(whole)}  (the editor's settings add theirs after these)")
