"""`indexing.secrets`' scans: the few scans of a text's bytes that keep the detection cheap find exactly
what each pattern alone finds, at the text's offsets, and the shortcuts after them (the keyword plugin's
expressions tried from the first hint word, lines seen once, guards) drop no value.

The end-to-end cases (every format, every path a value can take) are in tests/security; these pin the
equivalences the speed relies on, on texts made to hold the hard cases (values glued together, one
format's value inside another's, words sharing letters, letters that share a byte in the scans) from a
fixed seed.
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
    *"AKIA ASIA A3T AIza A I J x b B k_live_ sk rk sk- ant- proj- admin- T3BlbkFJ".split(),
    *"hooks.slack.com/services/ hooks".split(),
    *"ghp_ gho_ github_pat_ gh glpat- g xoxb- xox eyJ eyJK .eyJ ey . npm_ np m_ pypi-AgE p".split(),
    "0123456789",
    *"ABCDEFGHIJKLMNOP QRSTUVWXYZ abcdefghijklm nopqrstuvwxyz _ - / = z9".split(),
    " ",
    "\n",
    # the hint words, glued, cut and in other cases
    *"key token cookie contrase credential secret pass passw pwd auth bearer to ken coo kie se cret".split(),
    *"KEY Token COOKIE Secret PASS PWD AUTH Bearer BEARER \u212aey \u0130".split(),
    *"c k h aut b w d".split(),
    # letters that share a byte with one of the words' in the scans (A, J, x, b, B)
    *"pJss pxss Juth xuth Jearer xearer credentiJl contrJse".split(),
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


def _found(text: str) -> dict[str, list[int]]:
    return secrets._scanned(text, secrets._scan_bytes(text))


def test_the_scans_find_each_format_where_its_expression_alone_finds_it() -> None:
    checked = dict.fromkeys(secrets._FORMAT_EXPRESSIONS, 0)
    for text in _texts(3000, seed=17):
        got: dict[str, list[tuple[int, int]]] = {name: [] for name in checked}
        for name, match in secrets._format_matches(text, _found(text)):
            got[name].append(match.span())
        for name, expression in secrets._FORMAT_EXPRESSIONS.items():
            expected = [match.span() for match in expression.finditer(text)]
            assert got[name] == expected, (name, text)
            checked[name] += len(expected)
    assert min(checked.values()) > 0, checked  # the texts hold matches of every format


def test_the_scans_find_each_hint_word_in_any_case_where_the_lower_cased_text_has_it() -> None:
    checked = dict.fromkeys(secrets._HINT_WORDS, 0)
    for text in _texts(3000, seed=17):
        lower = secrets._lower(text)
        found = _found(text)
        for word in checked:
            expected = [match.start() for match in re.finditer(word, lower)]
            assert found.get(word, []) == expected, (word, text)
            checked[word] += len(expected)
    assert min(checked.values()) > 0, checked


def test_a_literal_that_shares_its_place_in_the_scans_with_another_is_still_found() -> None:
    # In the scans' bytes J and A are one byte, so "eyJKIA..." reads as an AWS key's prefix at the J, which
    # the expression tries first: the JSON web token there is checked too (`_Literal.may_share`).
    token = "eyJKIAxxxxxxx.eyJzdWIiOjF9.c2lnbmF0dXJlMTI"
    text = f"auth = {token}\n"
    assert [text[f.start : f.end] for f in find_secrets(text)] == [token]
    jwt = next(literal for literal in secrets._LITERALS if literal.name == "jwt")
    aws = [literal for literal in secrets._LITERALS if literal.name == "aws"]
    assert all(literal.may_share(jwt) for literal in aws)


def test_a_kelvin_sign_makes_a_hint_word_as_str_lower_does() -> None:
    # "\u212a".lower() is "k": the lower-cased text had a "key" here, and the scans' bytes must too.
    env = f"AWS_SECRET_ACCESS_\u212aEY_ID_2={WJALR}\n".replace("SECRET_", "")
    assert "\u212a".lower() == "k"
    assert [env[f.start : f.end] for f in find_secrets(env, ".env")] == [WJALR]


def test_the_quote_and_url_scan_finds_what_one_expression_over_all_quotes_found() -> None:
    one = re.compile(r"""(["'`])([A-Za-z0-9+/=_\-]{20,}|[0-9a-fA-F]{9,})\1""")
    rng = random.Random(5)
    pieces = (
        *('"', "'", "`", "0123456789abcdef", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "xyz", "+/=", " ", "\n", "-_"),
        *("://", "u:p@", ":", "@", "/", "AJxb", "ABCDEFGHIJKLMNOPQRST", "abcdef012", "0123456789"),
    )
    found = urls = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(3, 40)))
        expected = [(m.start(), m.group(2)) for m in one.finditer(text)]
        expected += [(m.start(), None) for m in secrets._URL_PASSWORD.finditer(text)]
        got = list(secrets._quoted_or_url(text, secrets._scan_bytes(text)))
        assert sorted(got, key=str) == sorted(expected, key=str), text
        found += len(expected)
        urls += sum(1 for _, value in expected if value is None)
    assert found > 500 and urls > 20


def test_a_keyword_match_that_starts_as_far_as_it_can_before_its_hint_word_is_found() -> None:
    # "database_pass" is a keyword of the plugin's list and "pass" the first hint word in it, 9 characters
    # in: the expressions are tried from there (`_keyword_span`), and one character later misses it.
    line = '    database_pass = "hunter2!"\n'
    assert [line[f.start : f.end] for f in find_secrets(line, "settings.py")] == ["hunter2!"]
    from detect_secrets.plugins.keyword import DENYLIST

    assert secrets._keyword_span(DENYLIST) == len("database_")


def test_each_keyword_guard_is_found_wherever_its_expression_matches() -> None:
    from detect_secrets.plugins import keyword

    rng = random.Random(11)
    words = ("password", "db_pass", "Secret", "api_key", "x", "")
    signs = ("=", "==", "!=", "!==", "=>", ":", ":=", "(", "", " ", "[1]=", "']:")
    quotes = ('"', "'", "`", "")
    matched = dict.fromkeys(secrets._keyword_guards(), 0)
    one = rng.choice

    def value() -> str:
        quote = one(quotes)
        return quote + one(("hunter2", "a b", "", "x;")) + one((quote, "", '"'))

    def gap() -> str:
        return one(("", " ", "\t", "  "))

    for _ in range(6000):
        line = one(
            (
                one(words) + gap() + one(signs) + gap() + value(),
                value() + gap() + one(signs) + gap() + one(words),
            )
        )
        line = one(("", "x = ", "(")) + line + one(("", ";", ")", ",", " # c"))
        for pattern, guard in secrets._keyword_guards().items():
            if pattern.search(line):
                assert guard.search(line), (pattern.pattern, line)
                matched[pattern] += 1
    assert min(matched.values()) > 20, matched
    assert set(matched) <= set(keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP) | set(
        keyword.CONFIG_DENYLIST_REGEX_TO_GROUP
    )


@pytest.mark.parametrize("pragma_first", [False, True], ids=["value first", "allowlisted first"])
def test_a_line_written_twice_is_allowlisted_only_where_the_comment_says(pragma_first: bool) -> None:
    # Lines seen once in a file are not read again; an allowlist comment on the line before changes that.
    line = 'password = "hunter2!x"\n'
    text = line + "# pragma: allowlist nextline secret\n" + line
    if pragma_first:
        text = "# pragma: allowlist nextline secret\n" + line + line
    found = find_secrets(text, "conf.py")
    assert [text[f.start : f.end] for f in found] == ["hunter2!x"]
    kept = text.index(line) if not pragma_first else text.rindex(line)
    assert found[0].start == kept + line.index("hunter2!x")


@pytest.mark.parametrize(
    "assignment",
    ["{}={}", "{} = {}", "{}: {}", "{}:={}", '"{}": "{}"', "'{}' = {}", "{}\t=\t{}", "export {}={}"],
)
def test_a_credential_given_unquoted_is_found_whatever_sign_gives_it(assignment: str) -> None:
    text = assignment.format("AWS_SECRET_ACCESS_KEY", WJALR) + "\n"
    assert [text[f.start : f.end] for f in find_secrets(text, "settings.env")] == [WJALR]
    header = f"Authorization: Bearer {WJALR}\n"
    assert [header[f.start : f.end] for f in find_secrets(header)] == [WJALR]


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
    offsets = _found(env)
    assert [env[at : at + 6] for at in offsets["secret"]] == ["SECRET"]


KEYWORD_FILES = (
    "settings.py", "app.js", "Main.java", "main.go", "a.c", "a.cpp", "a.m", "a.cs", "a.cls", "a.swift",
    "main.tf", "config.yaml", "setup.cfg", "a.ini", "a.properties", "pyproject.toml", "notes.txt", "",
)  # fmt: skip


def test_the_keyword_values_found_on_a_line_are_what_the_plugin_finds_there() -> None:
    # `find_secrets` takes a keyword line's values from the matches it tried (`_keyword_values`: from 9
    # characters before the first hint word, where its guard is) and does not run the plugin again: the
    # values must be the plugin's, for every file type's expressions, a line of two assignments included.
    from detect_secrets.plugins.keyword import KeywordDetector

    rng = random.Random(13)
    one = rng.choice
    words = ("password", "db_pass", "database_password", "Secret", "api_key", "private_key", "PWD")
    words += ("contraseña", "key_pass", "my_secret_token", "auth_key", "x", "passwd")
    signs = ("=", " = ", "==", "!=", "!==", "=>", ":", ": ", ":=", "(", "", " ", "[1]=", "']:", "]=", " <- ")

    def assignment() -> str:
        quote = one(('"', "'", "`", ""))
        value = one(("hunter2", "s3cr3t!x", "a b", "", "x;", "${X}", "abc", "tr0ub4dor&3"))
        named = one((one(words), '"' + one(words) + '"', "self." + one(words), "$" + one(words)))
        return named + one(signs) + quote + value + one((quote, "", '"')) + one(("", ";", ",", ")"))

    plugin = KeywordDetector()
    compared = several = 0
    for _ in range(6000):
        line = one(("", "    ", "x = ", "(", "const ", "if ")) + assignment()
        if rng.random() < 0.3:
            line += one((" ", "; ", ", ")) + assignment()
        hints = secrets._scanned(line, secrets._scan_bytes(line))
        places = [at for word in secrets._KEYWORD_HINTS for at in hints.get(word, ())]
        if not places:
            continue
        filename = one(KEYWORD_FILES)
        found = secrets._keyword_values(line, secrets._keyword_patterns(filename), min(places))
        if None in found:  # the plugin fails on such a line, and find_secrets runs it to do so
            continue
        expected = {s.secret_value for s in plugin.analyze_line(filename=filename or "file", line=line)}
        assert set(found) == expected, (filename, line)
        compared += bool(expected)
        several += len(expected) > 1
    assert compared > 1000 and several > 30, (compared, several)


def _entropy_lines(count: int, seed: int) -> list[str]:
    """Lines of quoted strings made of the entropy plugins' characters, around their limits: a few
    distinct characters or many, digits alone (the hex plugin lowers their entropy), eight hex digits each
    once (entropy 3, the hex plugin's limit, as a float sum), the same string twice, unquoted pieces."""
    rng = random.Random(seed)
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\\-_="
    hexa = "0123456789abcdefABCDEF"

    def string() -> str:
        kind = rng.randrange(6)
        if kind == 0:
            chars = rng.sample(b64, rng.randrange(1, 40))
            return "".join(rng.choice(chars) for _ in range(rng.randrange(1, 60)))
        if kind == 1:
            return "".join(rng.choice(hexa) for _ in range(rng.randrange(1, 40)))
        if kind == 2:
            return "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 30)))
        if kind == 3:
            return "".join(rng.sample(hexa[:16], 8)) * rng.randrange(1, 4)
        if kind == 4:
            return "".join(rng.sample(b64, rng.choice((22, 23, 24, 30))))
        return rng.choice(("x = ", ", ", " ", "(", "é", "`q`", "'", '"'))

    lines = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randrange(1, 6)):
            piece = string()
            quote = rng.choice(("'", '"', ""))
            parts.append(quote + piece + quote)
            if rng.random() < 0.2:
                parts.append(parts[-1])
        lines.append(rng.choice(("", "key = ", "f(")).join(("", "")) + " ".join(parts))
    return lines


def test_the_entropy_plugins_values_are_what_their_analyze_line_finds() -> None:
    """`_entropy_values` stands for the stock entropy plugins' ``analyze_line`` on every candidate line:
    the same values, on lines around their limits (the same floats: it sums the same terms in the same
    order)."""
    routes = [route for route in secrets._routes() if route.entropy]
    assert sorted(route.entropy for route in routes) == ["base64", "hex"]
    compared = found = 0
    for line in _entropy_lines(4000, seed=27):
        for route in routes:
            plugin = route.plugin
            expected = {s.secret_value for s in plugin.analyze_line(filename="file", line=line)}
            got = secrets._entropy_values(plugin, line, route.entropy == "hex")
            assert len(got) == len(set(got)) and set(got) == expected, (line, route.entropy)
            compared += 1
            found += bool(expected)
    assert compared == 8000 and found > 500  # the lines reach both sides of the limits


def test_a_gate_needle_is_skipped_only_where_its_expression_cannot_match() -> None:
    """`_gate_open` (the key-format plugins' expressions, searched for only where one of their needles is)
    says what searching each expression says, on lines holding the needles, the expressions' matches and
    the characters beyond ASCII that an expression ignoring case takes for ``i``, ``s`` and ``k``; and each
    needle's expression is one of detect-secrets' (a changed one would lose its needles, not its matches)."""
    gates = [route.gate for route in secrets._routes() if route.gate]
    expressions = {(regex.pattern, regex.flags) for gate in gates for regex, _ in gate}
    assert set(secrets._GATE_NEEDS) <= expressions
    rng = random.Random(27)
    pieces = (
        *"AKC AP APA -us us : :: key KEY pw PW pass PaSs token TOKEN secret SECRET cl cloudant".split(),
        *"ibm cloud iam IBM_CLOUD_IAM softlayer SL api cos hmac access .cloudant.com https:// @ = :=".split(),
        "\u0131am",  # dotless i
        "pa\u017fs",  # long s
        "\u212aey",  # Kelvin sign
        " ",
        '"',
        "'",
        "[",
        "]",
        "0123456789abcdef" * 4,
        "0123456789abcdef" * 3,
        "abcdefghijklmnopqrstuvwx",
        "abcdefghijklmnopqrstuvwxyz012345",
        "A" * 10,
        "Ab1" * 14 + "Ab",
        "12345678",
        "Ab1" * 11 + "Ab",
        "us12",
        "/soap/v3/",
        "api.softlayer.com",
    )
    hex64, hex48, lower24 = "0123456789abcdef" * 4, "0123456789abcdef" * 3, "abcdefghijklmnopqrstuvwx"
    whole = (  # a line each needle's expression matches
        ' x="AKCabcdefghij1" ',
        " APAbcdefgh12 ",
        "abcdefghijklmnopqrstuvwxyz012345-us12",
        "123456789:" + "Ab1" * 11 + "Ab",
        f"cloudant_apikey = '{hex64}'",
        f"cl_password: {lower24}",
        f"https://user:{hex64}@host.cloudant.com",
        f"https://user:{lower24}@host.CLOUDANT.com",
        "ibm_cloud_iam_api_key = " + "Ab1" * 14 + "Ab",
        f'"ibm_cos_hmac_secret_access_key": "{hex48}"',
        f"softlayer_api_key = {hex64}",
        f"https://api.softlayer.com/soap/v3/{hex64}",
    )
    pieces += tuple(line for text in whole for line in (text, text.replace("i", "\u0131"), text.upper()))
    matched = dict.fromkeys(secrets._GATE_NEEDS, 0)
    for n in range(30000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 12))) if n >= 12 else whole[n]
        for gate in gates:
            expected = any(regex.search(line) for regex, _ in gate)
            assert secrets._gate_open(gate, line) == expected, line
        for regex, _ in (item for gate in gates for item in gate if item[1]):
            matched[(regex.pattern, regex.flags)] += regex.search(line) is not None
    assert min(matched.values()) > 0, matched  # each needle's expression matched some lines
