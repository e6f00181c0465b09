"""What the encoded-forms pass (`indexing.secret_encodings`) adds to redacting a command's output, and
what a run's saved state costs to redact with and without `agent.redaction.RedactionCache`.

Run: ``python -m tests.benchmarks.redaction_cost``.

1. 5 MB of pytest-like output with a base64 line every 50 lines, three known secret values;
   `Redactor.redact` timed three times with the pass and three times with it switched off, in the same
   process. Prints the best of each.
2. A 40-step run's redactions, as `agent.loop.Agent` makes them, each step: a turn of reasoning and a
   tool call, a 30,000-character tool result (the default `max_tool_result_chars`) of that output,
   redacted for the event, for the model's request and for the state saved after the step (every step
   changed a file, the worst case). Two results hold a secret value met for the first time (steps 10 and
   25). Before: the saved state redacted the whole conversation again (the event's redaction was not
   cached either); after: one `RedactionCache` for all three. Best of three, each with a new `Redactor`.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Mapping
from typing import Any

import indexing.secrets as secrets
from agent.redaction import _KEEP, RedactingModel

VALUES = ("sk-live-4f9a8b7c6d5e4f3a2b1c", "AKIAIOSFODNN7EXAMPLEKEY9", "hunter2-but-longer-pass")
STEPS = 40
RESULT_CHARS = 30_000


def output(megabytes: int = 5, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    size = 0
    while size < megabytes * 2**20:
        n = rng.randrange(1000)
        lines.append(f"tests/test_mod{n}.py::test_case_{rng.randrange(10**6)} PASSED [{n % 100:3d}%]")
        if n % 50 == 0:
            lines.append(base64.b64encode(rng.randbytes(300)).decode())
        size += len(lines[-1]) + 1
    return "\n".join(lines)


def best_of(redactor: secrets.Redactor, text: str, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        redactor.redact(text)
        times.append(time.perf_counter() - started)
    return min(times)


def _learnt() -> secrets.Redactor:
    redactor = secrets.Redactor()
    for value in VALUES:
        redactor.redact(f'token = "{value}"')  # learnt, as a run learns the values it meets
    return redactor


def _uncached(redactor: secrets.Redactor, value: Any) -> Any:
    """The saved state's redaction before `RedactionCache` (agent.loop._redacted): every text again."""
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, Mapping):
        return {k: v if k in _KEEP else _uncached(redactor, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_uncached(redactor, v) for v in value]
    return value


class _Model:
    model_name = "none"

    def complete(self, *args: Any, **kwargs: Any) -> None:
        return None


def _results(text: str) -> list[str]:
    results = [text[i * RESULT_CHARS : (i + 1) * RESULT_CHARS] for i in range(STEPS)]
    for step, value in ((10, "Qz7vLp3Rt9Wx2Ny8Kd4Hs6Jm"), (25, "Bf5Gc1Xe8Ua3Vo7Ti2Zr9Pl")):
        results[step] = f'api_key = "{value}"\n' + results[step]  # a value met for the first time
    return results


def run_saves(results: list[str], *, cached: bool) -> tuple[float, float]:
    """Seconds redacting one run's steps (events, requests and saved states) and of that the saves."""
    redactor = _learnt()
    model = RedactingModel(_Model(), redactor)
    cache = model.redaction
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Task: find the slow batches."}]
    total = saves = 0.0
    for step, result in enumerate(results):
        started = time.perf_counter()
        if cached:
            cache.current(result)  # the event
        else:
            redactor.redact(result)
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Step {step}: reading the log for the slow batches. " * 20},
                    {"type": "tool_use", "id": f"t{step}", "name": "bash", "input": {"command": "cat"}},
                ],
            }
        )
        block = {"type": "tool_result", "tool_use_id": f"t{step}", "content": result}
        messages.append({"role": "user", "content": [block]})
        model.complete("system", [], messages)
        saving = time.perf_counter()
        if cached:
            [cache.current_value(message) for message in messages]
        else:
            _uncached(redactor, messages)
        done = time.perf_counter()
        total += done - started
        saves += done - saving
    return total, saves


def _best(results: list[str], cached: bool) -> tuple[float, float]:
    return min(run_saves(results, cached=cached) for _ in range(3))


def main() -> None:
    text = output()
    redactor = _learnt()
    with_pass = best_of(redactor, text)
    real = secrets.find_encoded
    secrets.find_encoded = lambda *args, **kwargs: []  # the pass switched off
    try:
        without = best_of(redactor, text)
    finally:
        secrets.find_encoded = real
    mb = len(text) / 2**20
    print(f"redact {mb:.1f} MB: {with_pass:.2f} s with the encoded-forms pass, {without:.2f} s without")
    results = _results(text)
    size = sum(map(len, results)) / 2**20
    before, before_saves = _best(results, cached=False)
    after, after_saves = _best(results, cached=True)
    print(
        f"{STEPS}-step run ({size:.1f} MB of tool results), a state saved after each step: "
        f"uncached saves {before_saves:.2f} s of {before:.2f} s redacting; "
        f"RedactionCache saves {after_saves:.2f} s of {after:.2f} s"
    )


if __name__ == "__main__":
    main()
