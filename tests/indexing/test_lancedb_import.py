"""LanceDB imported with pydantic's validator builds deferred (`indexing.lancedb_import`)."""

from __future__ import annotations

import pydantic
import pytest

import indexing.store  # noqa: F401  (imports LanceDB the way agentls does)
from indexing.lancedb_import import _lazy_validate_call


def test_the_namespace_clients_models_are_not_built_at_import() -> None:
    """The REST client's models (about 300) were built when LanceDB was imported: 3 s of CPU."""
    from lance_namespace_urllib3_client.models import CreateTableRequest, DropTableRequest

    assert DropTableRequest.__pydantic_complete__ is False
    # Still usable: the model is built on first use and validates as before.
    assert CreateTableRequest(id=["a"]).id == ["a"]
    with pytest.raises(pydantic.ValidationError):
        CreateTableRequest(id="not a list")


def test_pydantic_is_left_as_it_was() -> None:
    assert "defer_build" not in pydantic.BaseModel.model_config

    class Later(pydantic.BaseModel):
        x: int

    assert Later.__pydantic_complete__ is True
    assert pydantic.validate_call.__module__ == "pydantic.validate_call_decorator"


def test_a_lazily_wrapped_function_validates_on_its_first_call() -> None:
    lazy = _lazy_validate_call(pydantic.validate_call)

    @lazy
    def double(n: int) -> int:
        return 2 * n

    @lazy(validate_return=True)
    def name(n: int) -> str:
        return str(n)

    assert double("3") == 6  # coerced like pydantic's own
    with pytest.raises(pydantic.ValidationError):
        double("three")
    assert name(4) == "4"
