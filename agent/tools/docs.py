"""`lookup_docs`: the API of a library in the version this project has installed.

Input: `name` (a dotted Python name such as ``pytest.raises``, an npm package such as ``zod`` or
``@types/node``, a Go package or symbol such as ``net/http.Client``, a Rust crate or path such as
``serde::de::Deserialize``), optionally `language` (detected from the workspace otherwise:
``pyproject.toml``/``setup.py``/``requirements*.txt`` -> python, ``package.json`` -> javascript,
``go.mod`` -> go, ``Cargo.toml`` -> rust; in a Python project, a name that is no Python module but a
package in ``node_modules``, such as ``zod`` or ``@tanstack/react-query``, is looked up there) and `query`
(words to search for in the package).

- **Python**: the run's interpreter (`agent.interpreter`: a workspace environment, ``VIRTUAL_ENV``,
  Poetry, conda, else a fallback) runs `_PY_SCRIPT` in the sandbox with the workspace and that
  environment bound read-only. It imports the longest
  importable prefix of `name`, follows attributes, and prints (as JSON) the kind, the signature
  (`inspect.signature`), the docstring, the source file and line, the installed distribution and its
  version (`importlib.metadata.packages_distributions` / `version`) and, for a module or class, its public
  members: the first `_MAX_MEMBERS` with their signature and first doc line, the rest by name (a
  docstring past `_MAX_DOC` characters is cut, and says so). With `query`, it walks the package's
  modules instead and returns the public functions and classes whose name or docstring match the most
  words. A name that does not resolve is an error result naming the interpreter asked
  (`_python_failure`): a module it does not have, with what to do, or a distribution's name given for
  its import name (``PyYAML``: ``yaml``); a misspelt module or attribute gets the close names
  (``pytest.raise``: did you mean ``pytest.raises``?).
- **JavaScript/TypeScript**: read on the host, nothing runs: ``node_modules/NAME/package.json`` (the
  version), the declaration file it names (``types``/``typings``, else ``index.d.ts``, else
  ``node_modules/@types/NAME``) and the README, cut; with `query`, only the declaration lines that mention
  it, with context. Only files inside the package's folder (links resolved) and not secret are shown: a
  ``types`` of ``../../.env`` is not followed; a package folder that is a link out of the workspace (a
  committed ``node_modules -> /``, ``npm link``) is refused (pnpm's links inside it are read).
- **Go**: ``go -C ROOT doc NAME`` in the sandbox when ``go`` is on PATH (``GOPROXY=off``,
  ``GOFLAGS=-mod=readonly``: nothing is downloaded). Not exercised by the tests on machines without Go.
- **Rust**: the crate's source under Cargo's registry (``~/.cargo/registry/src``) in the version of the
  workspace's ``Cargo.lock``, read on the host: docs, signatures and locations (`agent.tools.rustdocs`).

Packages installed during the run (`agent.installs`, on the sandbox's ``PYTHONPATH``) are found too.
Results are cut to `MAX_CHARS`. Importing a package runs its code, which is why Python runs in the sandbox
(no network, the workspace read-only, time and memory limits).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.interpreter import Interpreter, detect_interpreter
from agent.paths import is_secret_path
from agent.scratch import scratch_folder
from agent.tools import CustomTool, ToolError, one_line

if TYPE_CHECKING:
    from agent.ports import Sandbox

__all__ = ["LookupDocsTool", "detect_language"]

MAX_CHARS = 16_000
_TIMEOUT = 60.0
_NPM_NAME = re.compile(r"^(?:@[a-z0-9][\w.-]*/)?[a-z0-9][\w.-]*$", re.IGNORECASE)
_PY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_GO_NAME = re.compile(r"^[A-Za-z0-9_./-]+(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")

_MAX_MEMBERS = 80
"""Members of a module or class listed with signature and summary; the rest are listed by name only."""
_MAX_DOC = 6000
"""Characters of a docstring shown (the whole result is cut at `MAX_CHARS` too)."""

_PY_SCRIPT = r"""
import difflib, importlib, importlib.metadata as md, inspect, json, os, pkgutil, sys, re
name, query, root = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.append(root)
# -I ignores PYTHONPATH; the sandbox sets it only for the run's installed packages (agent.installs).
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
def first_line(doc):
    return (doc or "").strip().split("\n", 1)[0][:160]
def signature(obj):
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return None
def close_to(word, names):
    names = [n for n in set(names) if not n.startswith("_") or word.startswith("_")]
    lower = {n.lower(): n for n in names}
    found = difflib.get_close_matches(word.lower(), list(lower), n=5, cutoff=0.6)
    return [lower[n] for n in found]
def resolve(dotted):
    parts = dotted.split(".")
    error = None
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError as exc:
            error = error or exc
            continue
        for j in range(i, len(parts)):
            try:
                obj = getattr(obj, parts[j])
            except AttributeError:
                owner = ".".join(parts[:j])
                result["close"] = [owner + "." + n for n in close_to(parts[j], dir(obj))]
                raise
        return obj
    raise error
def distributions(top):
    out = []
    try:
        names = md.packages_distributions().get(top, [])
    except Exception:
        names = []
    for dist in names:
        try:
            out.append([dist, md.version(dist)])
        except Exception:
            pass
    return out
def where(obj):
    try:
        path = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except TypeError:
        return None, None
    try:
        line = inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        line = None
    return path, line
top = name.split(".")[0]
result = {"name": name, "python": sys.version.split()[0], "distributions": distributions(top)}
max_members, max_doc = int(sys.argv[4]), int(sys.argv[5])
try:
    obj = resolve(name)
except Exception as exc:
    result["error"] = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ModuleNotFoundError) and exc.name == top:
        result["missing"] = top
        # A distribution's name given for its import name (PyYAML for yaml): the names it installs.
        wanted = re.sub(r"[-_.]+", "-", top).lower()
        try:
            tops = md.packages_distributions().items()
        except Exception:
            tops = []
        result["imports"] = sorted(t for t, dists in tops
                                   if any(re.sub(r"[-_.]+", "-", d).lower() == wanted for d in dists))
        if not result["imports"]:
            modules = [m.name for m in pkgutil.iter_modules()] + list(sys.builtin_module_names)
            result["close"] = close_to(top, modules)
    print(json.dumps(result)); sys.exit(0)
if query:
    words = [w for w in re.split(r"\W+", query.lower()) if w]
    modules = [obj] if inspect.ismodule(obj) else []
    if inspect.ismodule(obj) and hasattr(obj, "__path__"):
        for info in pkgutil.walk_packages(obj.__path__, obj.__name__ + "."):
            if len(modules) >= 300:
                break
            if any(part.startswith("_") for part in info.name.split(".")[1:]) and "test" in info.name:
                continue
            try:
                modules.append(importlib.import_module(info.name))
            except BaseException:
                continue
    hits, seen = [], set()
    for module in modules:
        for attr, value in list(vars(module).items()):
            if attr.startswith("_") or not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            key = (getattr(value, "__module__", ""), getattr(value, "__qualname__", attr))
            if key in seen:
                continue
            seen.add(key)
            text = (attr + " " + (inspect.getdoc(value) or "")).lower()
            score = sum(text.count(w) for w in words) + 3 * sum(w in attr.lower() for w in words)
            if score:
                summary = first_line(inspect.getdoc(value))
                hits.append((score, module.__name__ + "." + attr, signature(value), summary))
    hits.sort(key=lambda h: -h[0])
    result["matches"] = [{"name": n, "signature": s, "summary": d} for _, n, s, d in hits[:15]]
    result["modules_searched"] = len(modules)
    print(json.dumps(result)); sys.exit(0)
kind = "module" if inspect.ismodule(obj) else "class" if inspect.isclass(obj) else (
    "function" if callable(obj) else type(obj).__name__)
result["kind"] = kind
result["signature"] = None if inspect.ismodule(obj) else signature(obj)
doc = inspect.getdoc(obj) or ""
result["doc"], result["doc_chars"] = doc[:max_doc], len(doc)
result["file"], result["line"] = where(obj)
if inspect.ismodule(obj) or inspect.isclass(obj):
    members, more = [], []
    for attr, value in inspect.getmembers(obj):
        if attr.startswith("_"):
            continue
        if inspect.ismodule(obj) and inspect.ismodule(value):
            continue
        if len(members) >= max_members:
            more.append(attr)  # by name only: the model sees every member, and asks for one by name
            continue
        summary = first_line(inspect.getdoc(value)) if callable(value) else ""
        members.append({"name": attr, "signature": signature(value) if callable(value) else None,
                        "summary": summary})
    result["members"], result["more_members"] = members, more
print(json.dumps(result))
"""


def detect_language(root: Path) -> str | None:
    """The workspace's main package ecosystem by its manifest files."""
    if any((root / name).is_file() for name in ("pyproject.toml", "setup.py", "setup.cfg")) or any(
        root.glob("requirements*.txt")
    ):
        return "python"
    if (root / "package.json").is_file():
        return "javascript"
    if (root / "go.mod").is_file():
        return "go"
    if (root / "Cargo.toml").is_file():
        return "rust"
    if any(root.glob("*.py")):
        return "python"
    return None


def _cut(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[cut at {limit:,} of {len(text):,} characters]"


def _python_failure(data: Mapping[str, Any], interpreter: Interpreter) -> str:
    """What the model reads when `data['name']` could not be resolved with `interpreter`."""
    python = f"{interpreter.python} (python {data.get('python')}; {interpreter.reason})"
    missing = data.get("missing")
    close = [str(name) for name in data.get("close") or []]
    did_you_mean = f"; did you mean {', '.join(f'`{name}`' for name in close)}?" if close else ""
    if not missing:
        dists = ", ".join(f"{name} {version}" for name, version in data.get("distributions", []))
        installed = f"installed: {dists}" if dists else "no installed distribution (standard library?)"
        return f"{data['name']}: {data['error']}{did_you_mean} ({installed}; {python})"
    imports = [str(name) for name in data.get("imports") or []]
    imports = [name for name in imports if not name.startswith("_")] or imports
    if imports:
        names = ", ".join(f"`{name}`" for name in imports)
        that = "that" if len(imports) == 1 else "one of those"
        return (
            f"{missing} is the name of a distribution, not of a module: it installs {names}; look {that} up "
            f"(with {python})"
        )
    return (
        f"{missing} is not installed for the project's interpreter {python}, which its commands and "
        "tests use: "
        "check the name (the import name, like `yaml` for PyYAML), or install it first if the project "
        f"needs it (install_package, when the run offers it){did_you_mean}"
    )


def _format_python(data: Mapping[str, Any]) -> str:
    lines: list[str] = []
    dists = ", ".join(f"{name} {version}" for name, version in data.get("distributions", []))
    installed = f"installed: {dists}" if dists else "installed: (no distribution found; standard library?)"
    if "matches" in data:
        lines.append(f"Search in {data['name']} ({installed}; {data.get('modules_searched')} modules):")
        for match in data["matches"]:
            lines.append(f"- {match['name']}{match.get('signature') or ''}: {match.get('summary', '')}")
        if not data["matches"]:
            lines.append("(no function or class matches)")
        return "\n".join(lines)
    lines.append(f"{data['name']} ({data.get('kind')}; {installed}; python {data.get('python')})")
    if data.get("signature"):
        lines.append(f"signature: {data['name'].rsplit('.', 1)[-1]}{data['signature']}")
    if data.get("file"):
        lines.append(f"source: {data['file']}" + (f":{data['line']}" if data.get("line") else ""))
    if data.get("doc"):
        lines += ["", data["doc"]]
        total = int(data.get("doc_chars") or 0)
        if total > len(data["doc"]):
            lines.append(
                f"[docstring cut at {len(data['doc']):,} of {total:,} characters; the source has it all]"
            )
    members = data.get("members") or []
    more = [str(name) for name in data.get("more_members") or []]
    if members:
        count = f" ({len(members) + len(more)}; the first {len(members)} in full)" if more else ""
        lines += ["", f"members{count}:"]
        for member in members:
            summary = f": {member['summary']}" if member.get("summary") else ""
            lines.append(f"- {member['name']}{member.get('signature') or ''}{summary}")
        if more:
            lines.append(f"more members (look one up by name for its signature): {', '.join(more)}")
    return "\n".join(lines)


class LookupDocsTool(CustomTool):
    """`lookup_docs`."""

    name = "lookup_docs"
    description = (
        "Look up the API of an installed library in the version this project uses: a Python dotted "
        "name (`pytest.raises`, `requests.Session.get`) gives its signature, docstring, source location "
        "and installed version; an npm package gives its version, TypeScript declarations and README; a "
        "Go package or symbol gives `go doc`; a Rust crate or path (`serde`, `serde::de::Deserialize`) "
        "gives its docs and signatures from the locked version's source. With `query`, search the "
        "package for matching functions and classes instead. Prefer this to guessing an API from memory."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "description": "pytest.raises, zod, net/http.Client, serde::Serialize ...",
            },
            "language": {"type": "string", "enum": ["python", "javascript", "typescript", "go", "rust"]},
            "query": {"type": "string", "description": "Words to search for in the package."},
        },
        "required": ["name"],
        "additionalProperties": False,
    }

    def __init__(
        self,
        root: Path,
        sandbox: Sandbox | None,
        *,
        interpreter: Interpreter | None = None,
        cargo_home: Path | None = None,
    ) -> None:
        """`interpreter`: the run's Python (`agent.interpreter`; None: asked on the first Python lookup);
        `cargo_home`: where Cargo keeps downloaded crates (default ``$CARGO_HOME`` or ``~/.cargo``)."""
        self.root = Path(root)
        self.sandbox = sandbox
        self.interpreter = interpreter
        self.cargo_home = cargo_home

    @staticmethod
    def describe(input: Mapping[str, Any]) -> str:
        query = f" ({one_line(input['query'], 40)})" if input.get("query") else ""
        return f"lookup_docs: {input.get('name', '')}{query}"

    def run(self, input: Mapping[str, Any]) -> str:
        name = str(input["name"]).strip()
        language = input.get("language") or detect_language(self.root) or "python"
        query = str(input.get("query") or "").strip()
        if language == "python":
            if input.get("language") or not _NPM_NAME.match(name):
                return self._python(name, query)
            if (self.root / "node_modules" / name / "package.json").is_file():
                # A Python project with a JavaScript front end: the model named an npm package without
                # saying so. A Python module of that name comes first, else the package's docs.
                try:
                    return self._python(name, query)
                except ToolError:
                    return self._npm(name, query)
            return self._python(name, query)
        if language in ("javascript", "typescript"):
            return self._npm(name, query)
        if language == "rust":
            from agent.tools.rustdocs import default_cargo_home, rust_docs

            return _cut(rust_docs(self.root, name, query, self.cargo_home or default_cargo_home()))
        return self._go(name)

    def _run(
        self,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        binds: Sequence[tuple[Path, Path]] | None = None,
    ) -> tuple[int, str, str]:
        if self.sandbox is None:
            raise ToolError("there is no sandbox to run the lookup in")
        from agent.sandbox import SandboxUnavailable

        with scratch_folder("agentls-docs-") as scratch:
            try:
                result = self.sandbox.run(
                    argv,
                    scratch,
                    timeout=_TIMEOUT,
                    env=env,
                    ro_binds=[(self.root, self.root)] if binds is None else binds,
                )
            except SandboxUnavailable as error:
                raise ToolError(f"lookup_docs could not run: {error}") from None
        if result.timed_out:
            raise ToolError(f"the lookup took longer than {_TIMEOUT:.0f} s; ask for something narrower")
        return result.exit_code, result.stdout, result.stderr

    def _python(self, name: str, query: str) -> str:
        if not _PY_NAME.match(name):
            raise ToolError(f"{name!r} is not a dotted Python name (like `pytest.raises`)")
        if self.sandbox is None:
            raise ToolError("there is no sandbox to run the lookup in")
        self.interpreter = self.interpreter or detect_interpreter(self.root, sandbox=self.sandbox)
        python = self.interpreter.python
        argv = [python, "-I", "-c", _PY_SCRIPT, name, query, str(self.root), str(_MAX_MEMBERS), str(_MAX_DOC)]
        code, out, err = self._run(argv, binds=self.interpreter.sandbox_binds(self.root))
        line = next((x for x in reversed(out.splitlines()) if x.startswith("{")), None)
        if code != 0 or line is None:
            raise ToolError(f"the lookup with {python} failed (exit {code}): {one_line(err or out, 500)}")
        data = json.loads(line)
        if data.get("error"):
            raise ToolError(_cut(_python_failure(data, self.interpreter)))
        return _cut(_format_python(data))

    def _npm(self, name: str, query: str) -> str:
        if not _NPM_NAME.match(name):
            raise ToolError(f"{name!r} is not an npm package name")
        folder = self.root / "node_modules" / name
        if not _inside(folder, self.root):
            # A link committed in the repository (node_modules -> /, or to another project) or `npm link`.
            raise ToolError(
                f"node_modules/{name} is a link to {os.path.realpath(folder)}, outside the workspace; "
                "lookup_docs reads only packages inside it"
            )
        manifest = folder / "package.json"
        if not manifest.is_file():
            raise ToolError(f"{name} is not installed in node_modules (run the project's install first)")
        try:
            meta = json.loads(manifest.read_text("utf-8"))
        except (OSError, ValueError) as error:
            raise ToolError(f"cannot read {manifest}: {error}") from None
        parts = [f"{name} {meta.get('version', '?')} (node_modules/{name})"]
        if meta.get("description"):
            parts.append(str(meta["description"]))
        types = meta.get("types") or meta.get("typings") or "index.d.ts"
        candidates = [(folder / str(types), folder)]
        if not name.startswith("@types/"):
            bare = name.lstrip("@").replace("/", "__")
            types_folder = self.root / "node_modules" / "@types" / bare
            candidates.append((types_folder / "index.d.ts", types_folder))
        declarations = next(
            (
                path
                for path, within in candidates
                if _inside(within, self.root) and _package_file(path, within)
            ),
            None,
        )
        if declarations is not None:
            text = declarations.read_text("utf-8", "replace")
            if query:
                words = [w for w in re.split(r"\W+", query.lower()) if w]
                lines = text.splitlines()
                keep: set[int] = set()
                for number, line in enumerate(lines):
                    if any(w in line.lower() for w in words):
                        keep.update(range(max(0, number - 3), min(len(lines), number + 4)))
                text = "\n".join(lines[i] for i in sorted(keep)) or f"(nothing in it mentions {query!r})"
            rel = Path(os.path.normpath(declarations)).relative_to(self.root).as_posix()
            parts += ["", f"declarations ({rel}):", _cut(text, MAX_CHARS // 2)]
        readme = next((p for p in folder.glob("README*") if _package_file(p, folder)), None)
        if readme is not None and not query:
            parts += ["", f"{readme.name}:", _cut(readme.read_text("utf-8", "replace"), MAX_CHARS // 3)]
        return _cut("\n".join(parts))

    def _go(self, name: str) -> str:
        if not _GO_NAME.match(name) or name.startswith("-"):
            raise ToolError(f"{name!r} is not a Go package or symbol")
        go = shutil.which("go")
        if go is None:
            raise ToolError("Go is not installed here, so `go doc` cannot run")
        env = {"GOPROXY": "off", "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local", **_go_env()}
        code, out, err = self._run([go, "-C", str(self.root), "doc", name], env)
        if code != 0:
            raise ToolError(f"go doc {name} failed: {one_line(err or out, 500)}")
        return _cut(out)


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, its links resolved, is in the workspace `root` (its links resolved too)."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def _package_file(path: Path, folder: Path) -> bool:
    """Whether `path` is a file of the package in `folder` that lookup_docs may show: inside it once
    links are resolved (a package.json's ``types`` such as ``../../.env`` or ``/etc/passwd``, or a link
    out of it, is not) and not a secret file."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    if not real.startswith(base.rstrip(os.sep) + os.sep) or not os.path.isfile(real):
        return False
    return not is_secret_path(os.path.relpath(real, base)) and not is_secret_path(os.path.basename(path))


def _go_env() -> dict[str, str]:
    out = {}
    for key in ("GOPATH", "GOMODCACHE", "GOROOT"):
        if os.environ.get(key):
            out[key] = os.environ[key]
    return out
