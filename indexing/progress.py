"""The progress of an index run, and the words every front end shows for it.

An index run reports ``progress(phase, done, total)``. The phases, in order:

- "scanning": ``done`` files found so far (``total`` 0), then ``done == total`` when the walk is over;
- "indexing": ``done`` of ``total`` files parsed and written;
- "embedding": ``done`` of ``total`` chunks given vectors;
- "finishing": the search indexes. A step of it is reported as ``"finishing/<step>"`` (``done`` steps
  finished before it, ``total`` 0): "compacting chunks", "full-text index", ... On a kernel-size tree
  these steps take minutes between them, and each is worth a line of its own.

`describe` turns one report into the message and percentage shown by the CLI (a bar, or plain lines when
stderr is not a terminal) and by the language server's ``$/progress``. Imports nothing heavy: the CLI's
quick path uses it.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: see the module docstring for the phases."""

FINISHING = "finishing"


def finishing_steps(notify: ProgressCallback | None) -> Callable[[str], None]:
    """A ``step(label)`` callback for the store's maintenance that reports each step of the finishing
    phase to ``notify`` (``done``: the steps before it)."""
    done = 0

    def step(label: str) -> None:
        nonlocal done
        if notify is not None:
            notify(f"{FINISHING}/{label}", done, 0)
        done += 1

    return step


_TITLES = {
    "starting": "Starting",
    "scanning": "Scanning",
    "indexing": "Indexing",
    "embedding": "Embedding",
    FINISHING: "Building indexes",
}


def title(phase: str) -> str:
    """A short name of ``phase`` for a progress bar that shows the counts itself."""
    head, _, step = phase.partition("/")
    name = _TITLES.get(head, head)
    return f"{name}: {step}" if step else name


def describe(phase: str, done: int, total: int) -> tuple[str, int | None]:
    """(message, percentage) of one progress report; an unknown phase is shown as it is."""
    if phase == "starting":
        return "Starting the indexer", 0
    if phase == "scanning":
        return (f"Scanning files ({done:,} found)" if done else "Scanning files"), 0
    if phase == "indexing":
        pct = int(80 * done / total) if total else 80
        return f"Indexing {done:,}/{total:,} files", pct
    if phase == "embedding":
        pct = 80 + int(18 * done / total) if total else 98
        return f"Embedding {done:,}/{total:,} chunks", pct
    if phase == FINISHING:
        return "Building search indexes", 99
    if phase.startswith(FINISHING + "/"):
        return f"Building search indexes: {phase[len(FINISHING) + 1 :]}", 99
    return phase, None
