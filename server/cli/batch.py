"""``agentls batch TASKS.jsonl``: run many agent tasks, each in its own checkout, on a process pool or Ray.

Wiring only (the work is `server.batch`): read the tasks, run them on the engine, print one line per
finished task and a closing summary on stderr. Records, patches and ``results.jsonl`` go to ``--out``
(default: ``TASKS.out`` beside the tasks file); running the same command again skips the tasks whose
record is there. Exit status: 0 every task verified (or nothing to change), 3 some change not verified or
unfinished, 1 some task failed, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from server.cli.support import Number, WholeNumber, engine_options, environment, escape, stderr_console

_COLOURS = {"verified": "green", "no_change": "green", "failed": "red", "cancelled": "yellow"}


def _line(record: Mapping[str, Any], done: int, total: int) -> str:
    status = str(record.get("status"))
    colour = _COLOURS.get(status, "yellow")
    parts = [f"[{done}/{total}] {escape(str(record.get('id')))} [{colour}]{status}[/]"]
    if record.get("tests_run"):
        parts.append(f"tests {record.get('tests_passed')}/{record.get('tests_run')} passed")
    if "steps" in record:
        parts.append(f"{record.get('steps')} steps, ${float(record.get('cost') or 0.0):.4f}")
    parts.append(f"{float(record.get('seconds') or 0.0):.1f} s")
    if record.get("patch"):
        parts.append(escape(str(record["patch"])))
    if status == "failed" and record.get("error"):
        parts.append(f"[red]{escape(str(record['error']).splitlines()[0][:200])}[/]")
    return ", ".join(parts)


@click.command("batch")
@click.argument("tasks_file", metavar="TASKS.jsonl", type=click.Path(exists=True, dir_okay=False))
@engine_options(
    "local: a process pool on this machine; ray: Ray tasks on a cluster (pip install 'agentls[ray]')."
)
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(file_okay=False),
    help="Output folder for records, patches and results.jsonl (default: TASKS.out beside the file).",
)
@click.option("--jobs", "-j", type=WholeNumber(1), default=None, help="With --engine local: tasks at once.")
@click.option(
    "--max-cost",
    type=Number(0, what="an amount of US dollars"),
    default=None,
    help="USD budget of a task that sets none.",
)
@click.option("--max-steps", type=WholeNumber(1), default=None, help="Steps of a task that sets none.")
@click.option(
    "--max-minutes",
    type=Number(0, what="a number of minutes"),
    default=None,
    help="Wall-clock minutes of a task that sets none.",
)
@click.option("--retry-failed", is_flag=True, help="Run tasks whose record says failed again.")
@click.option("--keep-checkouts", is_flag=True, help="Keep each task's checkout under OUT/work.")
@click.option(
    "--no-index",
    is_flag=True,
    help="Do not index each checkout before its run (the agent's tools then scan files).",
)
def batch_cmd(
    tasks_file: str,
    engine: str,
    address: str | None,
    out: str | None,
    jobs: int | None,
    max_cost: float | None,
    max_steps: int | None,
    max_minutes: float | None,
    retry_failed: bool,
    keep_checkouts: bool,
    no_index: bool,
) -> None:
    """Run every task of TASKS.jsonl (one JSON object a line: kind implement|fix|run, repo, commit,
    target or instruction, budget) in its own checkout; write a patch and a record per task."""
    from server.batch import (
        BatchBusy,
        BatchOptions,
        EngineUnavailable,
        TaskFileError,
        batch_exit_code,
        load_tasks,
        run_batch,
    )

    if address and engine != "ray":
        raise click.UsageError("--address goes with --engine ray")
    env = environment()
    err = stderr_console()
    path = Path(tasks_file).resolve()
    try:
        tasks = load_tasks(path)
    except TaskFileError as error:
        raise click.ClickException(str(error)) from error
    out_dir = Path(out).resolve() if out else path.with_name(path.stem + ".out")
    options = BatchOptions(
        max_cost_usd=max_cost,
        max_steps=max_steps,
        max_minutes=max_minutes,
        keep_checkouts=keep_checkouts,
        index=not no_index,
    )
    workers = jobs or max(1, min(4, os.cpu_count() or 1))
    where = (
        f"Ray ({address or env.get('RAY_ADDRESS') or 'local'})" if engine == "ray" else f"{workers} processes"
    )
    err.print(
        f"{len(tasks)} tasks from {escape(str(path))} on {escape(where)}; output in {escape(str(out_dir))}"
    )
    try:
        summary = run_batch(
            tasks,
            out_dir,
            env,
            engine="ray" if engine == "ray" else "local",
            address=address,
            jobs=workers,
            options=options,
            retry_failed=retry_failed,
            on_record=lambda record, done, total: err.print(_line(record, done, total), highlight=False),
        )
    except (EngineUnavailable, BatchBusy) as error:
        raise click.ClickException(str(error)) from error
    records = summary.records.values()
    cost = sum(float(r.get("cost") or 0.0) for r in records)
    tokens = sum(int((r.get("tokens") or {}).get("total") or 0) for r in records)
    counts = ", ".join(
        f"{summary.count(s)} {s}"
        for s in ("verified", "unverified", "unfinished", "no_change", "failed", "cancelled")
        if summary.count(s)
    )
    err.print(
        f"{len(summary.records)}/{summary.total} tasks done ({counts or 'none'}); ran {len(summary.ran)}, "
        f"skipped {len(summary.skipped)} finished earlier; ${cost:.4f}, {tokens:,} tokens; "
        f"{summary.seconds:.1f} s. Records: {escape(str(out_dir / 'results.jsonl'))}",
        highlight=False,
    )
    if summary.changed:
        err.print(
            f"ran again: {', '.join(summary.changed)} (the task's line changed since its record)",
            highlight=False,
        )
    if summary.interrupted:
        err.print("[yellow]interrupted[/]: run the same command again to finish the rest", highlight=False)
    code = batch_exit_code(summary)
    if code:
        sys.exit(code)
