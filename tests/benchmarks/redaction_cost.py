"""What the encoded-forms pass (`indexing.secret_encodings`) adds to redacting a command's output.

Run: ``python -m tests.benchmarks.redaction_cost``. 5 MB of pytest-like output with a base64 line every 50
lines, three known secret values; `Redactor.redact` timed three times with the pass and three times with
it switched off, in the same process. Prints the best of each.
"""

from __future__ import annotations

import base64
import random
import time

import indexing.secrets as secrets


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


def main() -> None:
    text = output()
    redactor = secrets.Redactor()
    for value in ("sk-live-4f9a8b7c6d5e4f3a2b1c", "AKIAIOSFODNN7EXAMPLEKEY9", "hunter2-but-longer-pass"):
        redactor.redact(f'token = "{value}"')  # learnt, as a run learns the values it meets
    with_pass = best_of(redactor, text)
    real = secrets.find_encoded
    secrets.find_encoded = lambda *args, **kwargs: []  # the pass switched off
    try:
        without = best_of(redactor, text)
    finally:
        secrets.find_encoded = real
    mb = len(text) / 2**20
    print(f"redact {mb:.1f} MB: {with_pass:.2f} s with the encoded-forms pass, {without:.2f} s without")


if __name__ == "__main__":
    main()
