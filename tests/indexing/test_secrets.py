"""`indexing.secrets`' scans: the grouped expressions that keep the detection cheap find exactly what each
pattern alone finds, and the lower-cased text the hint words are found in keeps the text's offsets.

The end-to-end cases (every format, every path a value can take) are in tests/security; these pin the
equivalences the speed relies on, on texts made to hold the hard cases (values glued together, one
format's value inside another's, words sharing letters) from a fixed seed.
"""

from __future__ import annotations

import random
import re

import pytest

from indexing import secrets
from indexing.secrets import find_secrets

WJALR = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8rT3vLmNK"

FRAGMENTS = (
    # the formats' literals, their bodies' characters, and what ends them
    *"AKIA ASIA A3T AIza A I k_live_ sk rk sk- ant- proj- admin- T3BlbkFJ".split(),
    *"hooks.slack.com/services/ hooks".split(),
    *"ghp_ gho_ github_pat_ gh glpat- g xoxb- xox eyJ .eyJ ey . npm_ np m_ pypi-AgE p 0123456789".split(),
    *"ABCDEFGHIJKLMNOP QRSTUVWXYZ abcdefghijklm nopqrstuvwxyz _ - / = z9".split(),
    " ",
    "\n",
    # the hint words, glued and cut
    *"key token cookie contrase credential secret pass passw pwd auth bearer to ken coo kie se cret".split(),
    *"c k h aut b w d".split(),
)


WORDS = (
    "key",
    "token",
    "cookie",
    "contrase",
    "credential",
    "secret",
    "pass",
    "passw",
    "pwd",
    "auth",
    "bearer",
)


def _texts(count: int, seed: int) -> list[str]:
    """`count` random texts of `FRAGMENTS`, then every two hint words glued, sharing letters where one
    ends as the other starts (``secretoken``: a letter two words need, which one scan must give both)."""
    rng = random.Random(seed)
    texts = ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(5, 80))) for _ in range(count)]
    for first in WORDS:
        for second in WORDS:
            texts += [
                first + second[shared:] for shared in range(len(second)) if first.endswith(second[:shared])
            ]
    return texts


def _alone(rows: tuple[tuple[str, str, str, str], ...]) -> dict[str, re.Pattern[str]]:
    """Each row's pattern by itself, as a scan for that pattern alone would use it."""
    return {name: re.compile(re.escape(before + anchor) + after) for name, before, anchor, after in rows}


@pytest.mark.parametrize(
    ("rows", "expressions", "lower"),
    [
        (secrets._FORMAT_ROWS, secrets._KNOWN_FORMATS, False),
        (secrets._HINT_ROWS, secrets._HINTS, True),
    ],
    ids=["key formats", "hint words"],
)
def test_one_scan_per_anchor_finds_what_each_pattern_alone_finds(
    rows: tuple[tuple[str, str, str, str], ...],
    expressions: tuple[tuple[re.Pattern[str], dict[str, int]], ...],
    lower: bool,
) -> None:
    alone = _alone(rows)
    checked = dict.fromkeys(alone, 0)
    for text in _texts(3000, seed=17):
        text = text.lower() if lower else text
        grouped: dict[str, list[tuple[int, int]]] = {name: [] for name in alone}
        for name, start, match in secrets._matches(expressions, text):
            grouped[name].append((start, match.end(name)))
        for name, pattern in alone.items():
            expected = [match.span() for match in pattern.finditer(text)]
            assert grouped[name] == expected, (name, text)
            checked[name] += len(expected)
    assert min(checked.values()) > 0, checked  # the texts hold matches of every pattern


def test_the_three_quote_expressions_find_what_one_over_all_quotes_found() -> None:
    one = re.compile(r"""(["'`])([A-Za-z0-9+/=_\-]{20,}|[0-9a-fA-F]{9,})\1""")
    rng = random.Random(5)
    pieces = ('"', "'", "`", "0123456789abcdef", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "xyz", "+/=", " ", "\n", "-_")
    found = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(3, 40)))
        expected = sorted((m.start(), m.group(2)) for m in one.finditer(text))
        split = sorted((m.start(), m.group(1)) for q in secrets._QUOTED for m in q.finditer(text))
        assert split == expected, text
        found += len(expected)
    assert found > 500


def test_hint_words_are_found_at_their_offsets_after_a_turkish_capital_i() -> None:
    # "İ" lower-cases to two characters (i and a combining dot): every offset found in text.lower() after
    # one pointed that many characters too far into the text, so a value after Turkish text was missed.
    turkish = "# İstanbul, İzmir, İzmit, İnebolu, İskenderun, İspir, İnegöl, İpsala, İliç, İmranlı\n" * 8
    env = turkish + f"AWS_SECRET_ACCESS_KEY={WJALR}\n"
    assert [env[f.start : f.end] for f in find_secrets(env, ".env")] == [WJALR]
    code = turkish + 'password = "hunter2!"\n'
    assert [code[f.start : f.end] for f in find_secrets(code, "conf.py")] == ["hunter2!"]
    key = (
        turkish
        + "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8s3sK\n-----END RSA"
    )
    key += " PRIVATE KEY-----\n"
    assert [key[f.start : f.end] for f in find_secrets(key, "id.pem")] == [
        "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8s3sK"
    ]
    lower = secrets._lower(env)
    assert len(lower) == len(env)
    offsets = secrets._hint_offsets(lower)
    assert [env[at : at + 6] for at in offsets["secret"]] == ["SECRET"]
