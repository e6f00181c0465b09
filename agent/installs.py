"""Governed dependency installs: the `install_package` tool, the run's package layer, the manifest edit.

When the model needs a Python dependency the project does not have (``ModuleNotFoundError``), it calls
``install_package {package, manifest?}``. The tool is offered only when the sandbox may reach a
registry (``agent.sandbox.network`` is ``"registries"`` or ``"on"``); under ``"off"`` the model is told
there is no network and adapts. A call:

1. checks the requirement (a name with an optional version specifier and extras: no URL, path or pip
   option; a pip command line or several packages in one call are refused, saying what to send);
2. with ``agent.approve = "ask"``, asks the user first (`agent.approval`; no answer refuses), and the
   answer is in the transcript; it covers the registries the install reaches (the network gateway does
   not ask again about each host, `agent.netsandbox.NetworkGateway.granting`), whose requests are
   recorded as usual;
3. installs it with ``pip install --target`` run by the project's interpreter in the sandbox, through
   the network policy (so only allowed registries, every request recorded), into a `PackageLayer`: a
   per-run folder on the host, bound into every later sandboxed command at the same path and put on
   ``PYTHONPATH``, so tests and commands of the run import it. The user's ``.venv`` is never written
   (it stays read-only in the sandbox); the layer is deleted with the run. It holds at most
   ``agent.install.max_mb`` and ``agent.install.max_files`` files and folders: the sandbox watches it as
   it watches the workspace copy (`BoundedFolder`; the count as ``agent.sandbox.max_files`` is), and an
   install or a command that fills it past either is stopped, its result naming the setting;
4. adds the requirement to the project's manifest in the run's overlay: ``[project].dependencies`` of
   ``pyproject.toml``, or a requirements file (`manifest_for`: the one named by ``manifest``, else
   ``pyproject.toml`` when it has a ``[project]`` table, else, when that table declares its
   dependencies dynamic, the file they are read from (setuptools' ``file``, hatch-requirements-txt's
   ``files``), else ``requirements.txt``). That edit is part of the proposal: the
   user's accept is what changes their project, after which their own environment follows
   (``pip install -e .`` / ``pip install -r requirements.txt``). A requirement without a version gets
   ``>=`` the installed version; a package the manifest already names is not added twice; the
   manifest keeps its line endings and byte order mark (`agent.line_endings`);
5. records an ``install`` decision (requirement, the distributions this install put in the layer, none
   for a failed one, manifest, exit status, and ``manifest_error``): written once pip has run, whatever
   the manifest edit does. When pip succeeded but the edit failed (say, ``manifest = "pyproject.toml"``
   for a Poetry project without ``[project]``), the packages stay in the run's layer and the result is
   an error saying what is installed, why the manifest was not changed, and to add the requirement with
   the editor.

`InstallSettings` (``[agent.install]``) sets the index (``index_url``, e.g. a local mirror: its host must
be in ``agent.sandbox.allowed_hosts``) and the time an install may take.

Not covered: npm, Cargo and Go installs (the proxy lets their registries through for commands, but
there is no governed tool and no manifest edit for them), and resuming a run does not bring its layer
back (the model installs again).
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, Field

from agent.interpreter import Interpreter, detect_interpreter
from agent.line_endings import for_model, from_model
from agent.scratch import remove_tree, scratch_folder
from agent.tools import CustomTool, ToolError, ToolResult, one_line

if TYPE_CHECKING:
    from agent.overlay import Overlay
    from agent.ports import Sandbox
    from agent.recorder import Recorder
    from agent.sandbox import BoundedFolder
    from agent.tools.ask import AskCallback

__all__ = [
    "INSTALL_PACKAGE",
    "InstallPackageTool",
    "InstallSettings",
    "PackageLayer",
    "add_requirement",
    "manifest_for",
]

log = logging.getLogger(__name__)

INSTALL_PACKAGE = "install_package"


class InstallSettings(BaseModel):
    """How `install_package` installs (``[agent.install]``)."""

    model_config = ConfigDict(extra="forbid")

    index_url: str | None = None
    """The package index pip uses; None is pip's default (PyPI). Its host must be allowed by
    ``agent.sandbox.allowed_hosts`` (``host:port`` for a local mirror). It may carry credentials
    (``https://user:token@host/simple/``): pip gets it as ``PIP_INDEX_URL``, never on a command line."""
    timeout_seconds: float = Field(default=300.0, gt=0)
    """Wall-clock limit of one install."""
    max_mb: int = Field(default=4096, ge=1)
    """MiB the run's package folder may hold (what installs, and commands writing there, put in it; a host
    folder in the system's temp folder): an install or command that passes it is stopped, as one filling
    the workspace copy past ``agent.sandbox.workspace_mb`` is."""
    max_files: int = Field(default=500_000, ge=1)
    """Files and folders the run's package folder may hold: an empty file takes no space (`max_mb` does not
    count it) but an inode of the host's temp folder. Counted as ``agent.sandbox.max_files`` counts the
    workspace copy's (once that filesystem has lost as many free inodes during a command); an install or a
    command that passes it is stopped."""


class PackageLayer:
    """A per-run folder of installed packages, shown in every sandboxed command and on its PYTHONPATH
    (an `agent.netsandbox.SandboxExtension`), holding at most `limit_mb` (``agent.install.max_mb``) and
    `max_files` files and folders (``agent.install.max_files``)."""

    def __init__(
        self, limit_mb: int = InstallSettings().max_mb, max_files: int = InstallSettings().max_files
    ) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="agentls-site-"))
        self.limit_mb = limit_mb
        self.max_files = max_files

    def bwrap_args(self) -> list[str]:
        return ["--bind", str(self.path), str(self.path)]

    def environment(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.path)}

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def bounded_folder(self) -> BoundedFolder:
        """The layer is writable in every command: the sandbox's watch holds it to `limit_mb` and
        `max_files`."""
        from agent.sandbox import BoundedFolder

        return BoundedFolder(
            "package folder",
            self.path,
            self.limit_mb,
            "agent.install.max_mb",
            max_files=self.max_files,
            files_setting="agent.install.max_files",
        )

    def distributions(self) -> dict[str, str]:
        """Canonical name -> version of what the layer holds."""
        return {name: version for name, (version, _) in self.stamps().items()}

    def stamps(self) -> dict[str, tuple[str, tuple[int, int]]]:
        """Canonical name -> (version, identity of its dist-info folder): pip replaces the folder of what
        it installs (even in the same version), so a changed identity is an install."""
        found: dict[str, tuple[str, tuple[int, int]]] = {}
        for info in self.path.glob("*.dist-info"):
            name, _, version = info.name.removesuffix(".dist-info").partition("-")
            try:
                stat = info.stat()
            except OSError:
                continue
            found[canonicalize_name(name)] = (version, (stat.st_ino, stat.st_mtime_ns))
        return found

    def installed_since(self, before: Mapping[str, tuple[str, tuple[int, int]]]) -> dict[str, str]:
        """Canonical name -> version of what was installed into the layer since `before` (`stamps`)."""
        return {name: stamp[0] for name, stamp in self.stamps().items() if before.get(name) != stamp}

    def close(self) -> None:
        remove_tree(self.path, "package folder")


# -- the manifest ---------------------------------------------------------------------------------------

_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
_DEPENDENCIES = re.compile(r"^\s*dependencies\s*=\s*\[")


def _names(requirements: list[str]) -> set[str]:
    names: set[str] = set()
    for line in requirements:
        try:
            names.add(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue
    return names


def _pyproject_with(text: str, requirement: str) -> str:
    """`text` (a pyproject.toml with a ``[project]`` table) with `requirement` in its dependencies."""
    lines = text.splitlines(keepends=True)
    headers = [(i, m[1].strip()) for i, line in enumerate(lines) if (m := _TABLE.match(line))]
    start = next((i for i, table in headers if table == "project"), None)
    if start is None:
        raise ValueError("no [project] table")
    end = next((i for i, _ in headers if i > start), len(lines))
    entry = f'"{requirement}"'
    for i in range(start + 1, end):
        if not _DEPENDENCIES.match(lines[i]):
            continue
        # Find the closing bracket of the array (it may span lines).
        for j in range(i, end):
            code = lines[j].split("#", 1)[0]
            close = code.rfind("]")
            if close == -1:
                continue
            before = "".join(lines[i:j]) + code[:close]
            inner = before[before.index("[") + 1 :]
            if j == i:  # dependencies = ["a", "b"]
                head = code[:close].rstrip()
                separator = ", " if inner.strip() and not inner.rstrip().endswith(",") else ""
                lines[j] = head + separator + entry + lines[j][len(head) :]
            else:  # one entry per line: ours goes before the closing bracket, indented like the first
                indent = re.match(r"[ \t]*", lines[i + 1])
                pad = indent[0] if indent is not None and indent[0] and i + 1 < j else "    "
                previous = lines[j - 1]
                if inner.strip() and not previous.split("#", 1)[0].rstrip().endswith((",", "[")):
                    lines[j - 1] = previous.rstrip("\n").rstrip() + ",\n"
                lines.insert(j, f"{pad}{entry},\n")
            return "".join(lines)
        raise ValueError("the dependencies array is not closed")
    lines.insert(start + 1, f"dependencies = [{entry}]\n")
    return "".join(lines)


def _dynamic_file(data: Mapping[str, Any]) -> str | None:
    """The requirements file a pyproject.toml with dynamic dependencies reads them from: setuptools'
    ``[tool.setuptools.dynamic] dependencies = {file = [...]}`` or hatch-requirements-txt's ``files``."""
    tool = data.get("tool", {})
    setuptools = tool.get("setuptools", {}).get("dynamic", {}).get("dependencies", {})
    hatch = tool.get("hatch", {}).get("metadata", {}).get("hooks", {}).get("requirements_txt", {})
    for files in (setuptools.get("file") if isinstance(setuptools, dict) else None, hatch.get("files")):
        if isinstance(files, str):
            files = [files]
        if isinstance(files, list) and files and isinstance(files[0], str):
            return files[0]
    return None


def manifest_for(overlay: Overlay, manifest: str | None = None) -> str:
    """The manifest a requirement goes to: `manifest` when given, else ``pyproject.toml`` when it has a
    ``[project]`` table that lists its dependencies, else the requirements file its dynamic dependencies
    are read from, else ``requirements.txt``. Raises `ToolError` for a pyproject.toml whose
    ``[project]`` declares its dependencies dynamic: build backends refuse a static list there too."""
    data: dict[str, Any] = {}
    if overlay.exists("pyproject.toml"):
        try:
            data = tomllib.loads(overlay.read("pyproject.toml"))
        except tomllib.TOMLDecodeError:
            pass
    project = data.get("project")
    dynamic = isinstance(project, dict) and "dependencies" in (project.get("dynamic") or [])
    default = _dynamic_file(data) if dynamic else None
    if manifest is None:
        if isinstance(project, dict) and not dynamic:
            return "pyproject.toml"
        return overlay.resolve(default) if default else "requirements.txt"
    if dynamic and overlay.resolve(manifest) == "pyproject.toml":
        where = f"{default} (where they are read from)" if default else "the file they are read from"
        raise ToolError(
            "pyproject.toml lists `dependencies` in [project].dynamic, so they cannot be written there: "
            f"give `manifest` {where}"
        )
    return manifest


def add_requirement(overlay: Overlay, requirement: str, manifest: str | None = None) -> tuple[str, bool]:
    """Add `requirement` to the project's manifest in `overlay` (`manifest_for`): (the manifest's path,
    whether it changed; False when it already names the package). Raises `ToolError` when the manifest
    cannot be edited."""
    name = canonicalize_name(Requirement(requirement).name)
    manifest = manifest_for(overlay, manifest)
    if manifest.endswith(".toml"):
        if not overlay.exists(manifest):
            raise ToolError(f"there is no {manifest} to add the dependency to")
        original = overlay.read(manifest)
        text = for_model(original)  # its lines end in "\n" here; `from_model` gives back its own endings
        try:
            present = tomllib.loads(text).get("project", {}).get("dependencies", [])
            if name in _names(list(present)):
                return manifest, False
            updated = _pyproject_with(text, requirement)
            if requirement not in tomllib.loads(updated)["project"]["dependencies"]:
                raise ValueError("the edit did not land in [project].dependencies")
        except (tomllib.TOMLDecodeError, ValueError, KeyError) as error:
            raise ToolError(
                f"could not add {requirement!r} to {manifest} ({error}); edit its dependencies yourself"
            ) from None
        overlay.write(manifest, from_model(original, updated))
        return manifest, True
    original = overlay.read(manifest) if overlay.exists(manifest) else ""
    text = for_model(original)
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    if name in _names([line for line in lines if line and not line.startswith("-")]):
        return manifest, False
    updated = text + ("" if not text or text.endswith("\n") else "\n") + requirement + "\n"
    if overlay.exists(manifest):
        overlay.write(manifest, from_model(original, updated))
    else:
        overlay.create(manifest, updated)
    return manifest, True


# -- the tool ---------------------------------------------------------------------------------------------


def _not_a_requirement(text: str, error: InvalidRequirement) -> str:
    """What the model reads for a `package` that is not one requirement: a pip command line or several
    packages at once (``numpy pandas``) are said to be so, rather than with the parser's "Expected
    semicolon"."""
    words = [word for word in re.split(r"[\s,]+", text) if word]
    if words[:1] in (["pip"], ["pip3"]) or words[:2] == ["python", "-m"]:
        after = words[words.index("install") + 1 :] if "install" in words else []
        wanted = [word for word in after if not word.startswith("-")]
        example = f"`{wanted[0]}`" if wanted else "`requests`"
        return f"give `package` the requirement alone, without a command: not {text!r} but {example}"
    if "://" in text or text.startswith(("git+", "file:", "/", "./", "../")):
        return "only packages from the index can be installed: give a name and a version, not a URL or path"
    if len(words) > 1:
        try:
            names = [Requirement(word) for word in words]
        except InvalidRequirement:
            names = []
        if names:
            each = ", ".join(f"`{name}`" for name in names)
            return f"install_package installs one requirement per call: call it once for each of {each}"
    detail = one_line(str(error).splitlines()[0] if str(error) else error, 200)
    return (
        f"{text!r} is not a package requirement ({detail}): give a name with optional extras and version, "
        "like `requests`, `requests>=2.31` or `uvicorn[standard]`"
    )


class InstallPackageTool(CustomTool):
    """``install_package``: install a Python dependency for this run and propose the manifest edit."""

    name = INSTALL_PACKAGE
    description = (
        "Install a Python package the project needs but does not have (e.g. after ModuleNotFoundError) "
        "into this run's environment, and add it to the project's manifest (pyproject.toml or "
        "requirements.txt) as part of your proposed change. Use this instead of `pip install` in bash: "
        "the project's own environment is read-only. The user may be asked first and may refuse. "
        "`package` is a requirement such as `requests` or `requests>=2.31`."
    )
    input_schema: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "package": {"type": "string", "description": "A requirement: name, optional extras and version."},
            "manifest": {
                "type": "string",
                "description": "pyproject.toml or a requirements file to add it to (default: the project's).",
            },
        },
        "required": ["package"],
    }
    read_only = False

    def __init__(
        self,
        overlay: Overlay,
        sandbox: Sandbox,
        settings: InstallSettings | None = None,
        *,
        approve: str = "auto",
        ask: AskCallback | None = None,
        recorder: Recorder | None = None,
        interpreter: Interpreter | None = None,
    ) -> None:
        """`interpreter`: the run's Python, whose pip installs (`agent.interpreter`; None: asked on the
        first install)."""
        self.overlay = overlay
        self.sandbox = sandbox
        self.interpreter = interpreter
        self.settings = settings or InstallSettings()
        self.approve = approve
        self.ask = ask
        self.recorder = recorder
        self.layer: PackageLayer | None = None

    @classmethod
    def describe(cls, input: Mapping[str, Any]) -> str:
        return f"install_package: {one_line(str(input.get('package', '')), 80)}"

    def run(self, input: Mapping[str, Any]) -> ToolResult:
        requirement = str(input.get("package", "")).strip()
        manifest = input.get("manifest") or None
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement as error:
            raise ToolError(_not_a_requirement(requirement, error)) from None
        if parsed.url or requirement.startswith("-"):
            raise ToolError("only packages from the index can be installed: give a name and a version")
        if manifest is not None:
            manifest = self.overlay.resolve(str(manifest))
            if not manifest.endswith((".toml", ".txt", ".in")):
                raise ToolError("`manifest` is pyproject.toml or a requirements file (.txt, .in)")
        manifest = manifest_for(self.overlay, manifest)  # refused before anything is installed
        if self.sandbox.settings.network == "off":
            raise ToolError(
                'the sandbox has no network (agent.sandbox.network = "off"), so nothing can be installed: '
                "work with what is installed, or tell the user which dependency is missing"
            )
        asked = self.approve == "ask"
        if asked and not self._approved(requirement, manifest):
            raise ToolError(f"the user did not approve installing {requirement}; do without it")
        with self._granted(requirement) if asked else nullcontext():
            installed, output, code = self._install(requirement)
        if code != 0:
            self._record(requirement, installed, None, code)
            return ToolResult(f"pip could not install {requirement} (exit {code}):\n{output}", is_error=True)
        name = canonicalize_name(parsed.name)
        version = installed.get(name)
        if not parsed.specifier and version is not None:
            parsed.specifier = SpecifierSet(f">={version}")
        entry = str(parsed)
        versions = ", ".join(f"{n} {v}" for n, v in sorted(installed.items()))
        path: str | None = None
        problem: str | None = "the run stopped during the manifest edit"
        try:
            path, changed = add_requirement(self.overlay, entry, manifest)
            problem = None
        except ToolError as error:
            problem = str(error)
        except Exception as error:  # an overlay that refused the write: still a result, not a lost install
            log.warning("adding %s to the manifest failed", entry, exc_info=True)
            problem = f"{type(error).__name__}: {one_line(error, 300)}"
        finally:  # pip changed the run's environment: the transcript says so, whatever the edit did
            self._record(requirement, installed, path, code, manifest_error=problem)
        if problem is not None:
            return ToolResult(
                f"Installed {versions} into this run's environment, but the manifest was not changed: "
                f"{problem}.\nThe package stays installed for this run's commands and tests. Add `{entry}` "
                "to the project's dependencies yourself with the editor, so that your proposal declares it.",
                is_error=True,
            )
        note = (
            f"Added `{entry}` to {path}; that edit is part of your proposal."
            if changed
            else f"{path} already lists {parsed.name}; left as it is."
        )
        return ToolResult(
            f"Installed into this run's environment (on PYTHONPATH for every command; the project's own "
            f"environment is unchanged): {versions}. {note}"
        )

    def _approved(self, requirement: str, manifest: str | None) -> bool:
        from agent.approval import ask_approval

        where = manifest or "the project's manifest"
        index = urlsplit(self.settings.index_url).hostname if self.settings.index_url else None
        return ask_approval(
            self.ask,
            self.recorder,
            f"Allow the agent to install `{requirement}` from {index or 'PyPI'} into this run's environment "
            f"(not your .venv) and propose adding it to {where}?",
            subject="install",
            detail=requirement,
        )

    def _granted(self, requirement: str) -> AbstractContextManager[None]:
        """The user's approval of the install covers the registry requests pip makes for it: the network
        gateway asks nothing more while it runs (the requests are still recorded)."""
        gateway = getattr(self.sandbox, "network_gateway", None)
        gateway = gateway() if gateway is not None else None
        if gateway is None:
            return nullcontext()
        grant: AbstractContextManager[None] = gateway.granting(f"approved with the install of {requirement}")
        return grant

    def _install(self, requirement: str) -> tuple[dict[str, str], str, int]:
        from agent.sandbox import SandboxUnavailable

        if self.layer is None:
            self.layer = PackageLayer(self.settings.max_mb, self.settings.max_files)
            extensions = getattr(self.sandbox, "extensions", None)
            if extensions is not None:
                extensions.append(self.layer)
        target = str(self.layer.path)
        root = self.overlay.root
        options = ["--target", target, "--upgrade", "--disable-pip-version-check", "--no-input"]
        options += ["--progress-bar", "off", "--no-warn-script-location"]
        # In pip's environment, not on its command line (and bwrap's), which every user of the machine can
        # read (`ps`): the URL may carry a password or a token.
        env = {"PIP_INDEX_URL": self.settings.index_url} if self.settings.index_url else {}
        output, code = "", 1
        before = self.layer.stamps()
        self.interpreter = self.interpreter or detect_interpreter(root, sandbox=self.sandbox)
        for python in dict.fromkeys([self.interpreter.python, sys.executable]):
            with scratch_folder("agentls-install-") as scratch:
                try:
                    result = self.sandbox.run(
                        [python, "-m", "pip", "install", *options, requirement],
                        scratch,
                        timeout=self.settings.timeout_seconds,
                        env=env,
                        ro_binds=self.interpreter.sandbox_binds(root),
                    )
                except SandboxUnavailable as error:
                    raise ToolError(f"install_package could not run: {error}") from None
            output = (result.stdout + result.stderr).strip()[-4000:]
            code = result.exit_code
            if "No module named pip" not in output:
                break
        # What this install put there: not the packages earlier installs of the run left in the layer.
        return self.layer.installed_since(before), output, code

    def _record(
        self,
        requirement: str,
        installed: dict[str, str],
        manifest: str | None,
        code: int,
        *,
        manifest_error: str | None = None,
    ) -> None:
        if self.recorder is not None:
            self.recorder.decision(
                "install",
                requirement=requirement,
                installed=installed,
                manifest=manifest,
                exit_code=code,
                manifest_error=manifest_error,
            )

    def close(self) -> None:
        if self.layer is not None:
            extensions = getattr(self.sandbox, "extensions", None)
            if extensions is not None and self.layer in extensions:
                extensions.remove(self.layer)
            self.layer.close()
            self.layer = None
