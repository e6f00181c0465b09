"""LanceDB, imported without paying for its REST namespace client.

``import lancedb`` imports ``lance_namespace``, whose generated REST client defines about 300 pydantic
models and wraps every API method in ``pydantic.validate_call``. Pydantic builds each model's and each
method's validator when the class is defined, so the import took about 4 s of wall time on the 2-core
machine (3 s of CPU), for a client agentls never calls: its index is a local folder. That import was most
of a cold ``agentls index`` after one edited file, of the first search and of the warm search process's
start.

`import_lancedb` imports LanceDB with those builds deferred: while it runs, models defined get pydantic's
``defer_build`` (the validator is built on first use) and ``validate_call`` wraps functions so the
validator is built on the first call. Both are pydantic's own behaviours, only later; the settings are
put back when the import returns, and a model or function used later validates exactly as before.
Measured: 4.1 s -> 1.5 s wall for ``import lancedb`` at load 2.5.

Importing this module imports LanceDB so; the store takes ``lancedb`` and the index configs from here.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["FTS", "BTree", "HnswSq", "import_lancedb", "lancedb"]

_lock = threading.Lock()


def _lazy_validate_call(real: Callable[..., Any]) -> Callable[..., Any]:
    """A ``validate_call`` that builds ``real``'s wrapper on the wrapped function's first call."""

    def validate_call(func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
            built: list[Callable[..., Any]] = []

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if not built:
                    built.append(real(**options)(f))
                return built[0](*args, **kwargs)

            return wrapper

        return decorate if func is None else decorate(func)

    return validate_call


def import_lancedb() -> ModuleType:
    """``lancedb``, imported with pydantic's validator builds deferred (see the module docstring)."""
    if "lancedb" in sys.modules:
        return sys.modules["lancedb"]
    import pydantic

    with _lock:
        real_validate_call = pydantic.validate_call
        real_config = pydantic.BaseModel.model_config
        pydantic.validate_call = _lazy_validate_call(real_validate_call)
        pydantic.BaseModel.model_config = pydantic.ConfigDict(**real_config, defer_build=True)
        try:
            return importlib.import_module("lancedb")
        finally:
            pydantic.validate_call = real_validate_call
            pydantic.BaseModel.model_config = real_config


lancedb = import_lancedb()

from lancedb.index import FTS, BTree, HnswSq  # noqa: E402  (after the import above, on purpose)
