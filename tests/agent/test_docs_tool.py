"""`lookup_docs` on real installed packages: `pytest.raises` in a project venv made in the test (with
``--system-site-packages``, so it sees this machine's pytest) answers its signature, source and installed
version, run in the real sandbox; a search over a package's docstrings; an npm package's version,
declarations and README from node_modules; a Rust crate's docs and signatures in its Cargo.lock version
from a Cargo registry folder made in the test; unknown names and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.sandbox import Sandbox, SandboxSettings
from agent.tools import ToolRegistry
from agent.tools.docs import LookupDocsTool, detect_language


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0.1"\n')
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / ".venv")],
        check=True,
    )
    return root


def _tool(root: Path) -> ToolRegistry:
    return ToolRegistry([LookupDocsTool(root, Sandbox(SandboxSettings(timeout_seconds=60)))])


def test_pytest_raises_in_the_projects_venv(project: Path) -> None:
    tool = LookupDocsTool(project, Sandbox(SandboxSettings(timeout_seconds=60)))
    result = ToolRegistry([tool]).execute("lookup_docs", {"name": "pytest.raises"})
    # Asked on first use (outside a run): the project's venv, probed in the sandbox.
    assert tool.interpreter is not None and tool.interpreter.python == str(project / ".venv/bin/python")
    assert not result.is_error, result.content
    text = result.content
    # The venv's own pytest: its base interpreter's, which is not this one's when the tests run in a venv.
    version = subprocess.run(
        [project / ".venv/bin/python", "-c", "import importlib.metadata as m; print(m.version('pytest'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"installed: pytest {version}" in text
    assert "pytest.raises (function;" in text
    assert "signature: raises(expected_exception" in text
    assert "source: " in text and "/_pytest/" in text
    assert "Assert that a code block/function call raises" in text


def test_a_module_lists_members_and_a_search_finds_by_docstring(project: Path) -> None:
    registry = _tool(project)
    module = registry.execute("lookup_docs", {"name": "json"}).content
    assert "json (module;" in module and "- dumps(obj" in module
    found = registry.execute("lookup_docs", {"name": "email", "query": "parse address"}).content
    assert "Search in email" in found and "email.utils.parseaddr" in found


def test_unknown_names_and_bad_input(project: Path) -> None:
    registry = _tool(project)
    missing = registry.execute("lookup_docs", {"name": "no_such_package_xyz.thing"})
    # An error, naming the interpreter asked (not "standard library?"), and what to do.
    assert missing.is_error, missing.content
    venv = str(project / ".venv/bin/python")
    expected = f"no_such_package_xyz is not installed for the project's interpreter {venv}"
    assert missing.content.startswith(expected), missing.content
    assert "the workspace's .venv" in missing.content and "install_package" in missing.content
    assert "standard library" not in missing.content
    attr = registry.execute("lookup_docs", {"name": "pytest.no_such_attribute"})
    assert attr.is_error and "AttributeError" in attr.content and "installed: pytest" in attr.content
    # A distribution's name for its import name: the import name to look up instead.
    dist = registry.execute("lookup_docs", {"name": "PyYAML"})
    assert dist.is_error and "it installs `yaml`" in dist.content, dist.content
    bad = registry.execute("lookup_docs", {"name": "os; rm -rf /"})
    assert bad.is_error and "not a dotted Python name" in bad.content


def test_an_npm_package_from_node_modules(tmp_path: Path) -> None:
    root = tmp_path / "web"
    package = root / "node_modules" / "tiny-lib"
    package.mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"name": "web", "dependencies": {"tiny-lib": "^2.1.0"}}))
    (package / "package.json").write_text(
        json.dumps({"name": "tiny-lib", "version": "2.1.3", "types": "lib.d.ts"})
    )
    (package / "lib.d.ts").write_text(
        "/** Adds two numbers. */\nexport declare function add(a: number, b: number): number;\n"
        "export declare function other(): void;\n"
    )
    (package / "README.md").write_text("# tiny-lib\nTiny helpers.\n")
    assert detect_language(root) == "javascript"
    registry = ToolRegistry([LookupDocsTool(root, None)])
    text = registry.execute("lookup_docs", {"name": "tiny-lib"}).content
    assert text.startswith("tiny-lib 2.1.3 (node_modules/tiny-lib)")
    assert "export declare function add(a: number, b: number): number;" in text and "Tiny helpers." in text
    narrowed = registry.execute("lookup_docs", {"name": "tiny-lib", "query": "add"}).content
    assert "function add" in narrowed and "README" not in narrowed
    absent = registry.execute("lookup_docs", {"name": "left-pad"})
    assert absent.is_error and "not installed in node_modules" in absent.content


def test_an_npm_package_shows_only_its_own_files(tmp_path: Path) -> None:
    """A package.json's `types` and a README are followed only inside the package's folder (links resolved):
    not to the workspace's .env, an absolute path or a link out; a package linked into node_modules (pnpm's
    layout) is read through its link."""
    root = tmp_path / "web"
    (root / "node_modules").mkdir(parents=True)
    (root / "package.json").write_text("{}")
    (root / ".env").write_text("STRIPE_KEY=sk_live_not_for_the_model\n")
    outside = tmp_path / "private.txt"
    outside.write_text("private notes\n")
    registry = ToolRegistry([LookupDocsTool(root, None)])
    for name, types in (("dotenv-types", "../../.env"), ("absolute-types", str(outside))):
        package = root / "node_modules" / name
        package.mkdir()
        (package / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", "types": types}))
        result = registry.execute("lookup_docs", {"name": name})
        assert not result.is_error, result.content
        assert result.content == f"{name} 1.0.0 (node_modules/{name})"
    (root / "node_modules" / "dotenv-types" / "README.md").symlink_to(outside)
    assert "private" not in registry.execute("lookup_docs", {"name": "dotenv-types"}).content
    store = root / "node_modules" / ".pnpm" / "linked@2.0.0" / "node_modules" / "linked"
    store.mkdir(parents=True)
    (store / "package.json").write_text(json.dumps({"name": "linked", "version": "2.0.0", "types": "x.d.ts"}))
    (store / "x.d.ts").write_text("export declare const linked: number;\n")
    (root / "node_modules" / "linked").symlink_to(store)
    linked = registry.execute("lookup_docs", {"name": "linked"}).content
    assert "declarations (node_modules/linked/x.d.ts):" in linked and "const linked: number" in linked


def _crate(home: Path, name: str, version: str, files: dict[str, str]) -> Path:
    folder = home / "registry" / "src" / "index.crates.io-6f17d22bba15001f" / f"{name}-{version}"
    for rel, text in {"Cargo.toml": f'[package]\nname = "{name}"\nversion = "{version}"\n', **files}.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def test_a_rust_crate_in_the_locked_version_from_cargos_registry(tmp_path: Path) -> None:
    home = tmp_path / "cargo"
    lib = (
        "//! Parse things, quickly.\n"
        "pub mod de;\n"
        "/// A parse error.\n"
        "#[derive(Debug)]\n"
        "pub struct Error {\n"
        "    pub line: usize,\n"
        "}\n"
    )
    de = (
        "/// Turn `text` into a value.\n"
        "///\n"
        "/// Fails with [`Error`] on bad input.\n"
        "pub fn from_str<T: Deserialize>(text: &str) -> Result<T, Error> {\n"
        "    todo!()\n"
        "}\n"
        "/// Types that can be read back.\n"
        "pub trait Deserialize: Sized {\n"
        "    fn deserialize(text: &str) -> Self;\n"
        "}\n"
    )
    _crate(home, "tiny-parse", "1.2.0", {"src/lib.rs": lib, "src/de/mod.rs": de})
    _crate(home, "tiny-parse", "2.0.0", {"src/lib.rs": "//! The new major.\n"})
    root = tmp_path / "app"
    root.mkdir()
    (root / "Cargo.toml").write_text('[package]\nname = "app"\nversion = "0.1.0"\n')
    (root / "Cargo.lock").write_text(
        'version = 3\n\n[[package]]\nname = "app"\nversion = "0.1.0"\n\n'
        '[[package]]\nname = "tiny-parse"\nversion = "1.2.0"\n'
    )
    assert detect_language(root) == "rust"
    registry = ToolRegistry([LookupDocsTool(root, None, cargo_home=home)])

    overview = registry.execute("lookup_docs", {"name": "tiny_parse"}).content  # '_' or '-' alike
    assert overview.startswith("crate tiny-parse 1.2.0 (")  # the locked version, not the newest
    assert "Parse things, quickly." in overview and "- struct Error" in overview and "- mod de" in overview

    item = registry.execute("lookup_docs", {"name": "tiny_parse::de::from_str"}).content
    assert "fn from_str (src/de/mod.rs:4)" in item and "Fails with [`Error`] on bad input." in item
    assert "pub fn from_str<T: Deserialize>(text: &str) -> Result<T, Error> { ... }" in item
    trait = registry.execute("lookup_docs", {"name": "tiny_parse::Deserialize"}).content
    assert "fn deserialize(text: &str) -> Self;" in trait
    error = registry.execute("lookup_docs", {"name": "tiny_parse::Error"}).content
    assert "#[derive(Debug)]" in error and "pub line: usize," in error

    found = registry.execute("lookup_docs", {"name": "tiny_parse", "query": "parse error"}).content
    assert "- struct Error (src/lib.rs:5): A parse error." in found

    (root / "Cargo.lock").write_text('[[package]]\nname = "tiny-parse"\nversion = "1.3.0"\n')
    missing = registry.execute("lookup_docs", {"name": "tiny_parse"})
    assert missing.is_error and "1.3.0 (from Cargo.lock) is not downloaded" in missing.content
    assert "cargo fetch" in missing.content


def test_a_package_installed_during_the_run_is_found(project: Path) -> None:
    from agent.installs import PackageLayer

    layer = PackageLayer()
    try:
        (layer.path / "demo_dep").mkdir()
        (layer.path / "demo_dep" / "__init__.py").write_text(
            'def answer(x: int = 42) -> int:\n    """The answer."""\n    return x\n'
        )
        info = layer.path / "demo_dep-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-dep\nVersion: 1.0\n")
        (info / "top_level.txt").write_text("demo_dep\n")
        sandbox = Sandbox(SandboxSettings(timeout_seconds=60))
        registry = ToolRegistry([LookupDocsTool(project, sandbox)])
        before = registry.execute("lookup_docs", {"name": "demo_dep.answer"})
        assert before.is_error and "demo_dep is not installed" in before.content
        sandbox.extensions.append(layer)
        text = registry.execute("lookup_docs", {"name": "demo_dep.answer"}).content
        assert "signature: answer(x: int = 42) -> int" in text and "demo-dep 1.0" in text
    finally:
        layer.close()


def test_a_wide_module_names_every_member_and_a_wrong_name_gets_close_matches(project: Path) -> None:
    """A module with more members than are listed in full still names the rest (a model looking for one
    must not conclude it is not there), a long docstring says it was cut, and a name that does not exist
    (a typo, a guess) is answered with the names it is close to."""
    functions = "".join(f"def func_{i}(x):\n    '''Function {i}.'''\n    return x\n\n" for i in range(120))
    (project / "wide_api.py").write_text(
        '"""'
        + "A long module docstring.\n" * 400
        + '"""\n\n'
        + functions
        + "class Widget:\n    def render(self, width: int) -> str:\n        return ''\n"
    )
    registry = _tool(project)
    module = registry.execute("lookup_docs", {"name": "wide_api"})
    assert not module.is_error, module.content
    assert "[docstring cut at 6,000 of 9,999 characters; the source has it all]" in module.content
    assert "members (121; the first 80 in full):\n- Widget()\n- func_0(x): Function 0." in module.content
    listed = module.content.split("more members (look one up by name for its signature): ")[1]
    assert listed.startswith("func_62, ") and listed.rstrip().endswith("func_99")

    method = registry.execute("lookup_docs", {"name": "wide_api.Widget.rendr"})
    assert method.is_error and "did you mean `wide_api.Widget.render`?" in method.content, method.content
    raises = registry.execute("lookup_docs", {"name": "pytest.raise"})
    assert raises.is_error and "did you mean `pytest.raises`" in raises.content, raises.content
    module_typo = registry.execute("lookup_docs", {"name": "wide_apj.func_1"})
    assert module_typo.is_error and "wide_apj is not installed" in module_typo.content
    assert "did you mean `wide_api`?" in module_typo.content, module_typo.content


def test_an_npm_package_in_a_python_project_is_found_in_node_modules(project: Path) -> None:
    """A Python project with a JavaScript front end: a name the model gives without `language` that is
    no Python module but a package in node_modules is looked up there (it answered "not installed for
    the project's interpreter"); a Python module of the same name still comes first."""
    for name, version in (("zod", "3.23.8"), ("@acme/ui", "1.0.0"), ("json", "0.0.1")):
        package = project / "node_modules" / name
        package.mkdir(parents=True)
        (package / "package.json").write_text(json.dumps({"name": name, "version": version}))
        (package / "index.d.ts").write_text(f"export declare const version: '{version}';\n")
    registry = _tool(project)
    zod = registry.execute("lookup_docs", {"name": "zod"})
    assert not zod.is_error and zod.content.startswith("zod 3.23.8 (node_modules/zod)"), zod.content
    scoped = registry.execute("lookup_docs", {"name": "@acme/ui"})
    assert not scoped.is_error and scoped.content.startswith("@acme/ui 1.0.0"), scoped.content
    python = registry.execute("lookup_docs", {"name": "json"})
    assert python.content.startswith("json (module;"), python.content
    absent = registry.execute("lookup_docs", {"name": "left_pad_nowhere"})
    assert absent.is_error and "is not installed for the project's interpreter" in absent.content
