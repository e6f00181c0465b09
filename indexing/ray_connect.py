"""Joining a Ray cluster, for the commands that run on one (`agentls index --engine ray`,
`agentls batch --engine ray`): one place for the import, the ``ray.init`` call and the messages a user
can act on when Ray is missing or the cluster does not answer."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["RayUnavailable", "connect"]


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster does not answer; the message says what to do."""


def connect(address: str | None) -> Any:
    """The `ray` module, initialised for this driver: the cluster at `address` (None: ``RAY_ADDRESS``,
    else a local Ray started for the run). Raises `RayUnavailable`."""
    try:
        import ray
    except ImportError as missing:
        raise RayUnavailable(
            "Ray is not installed: pip install 'agentls[ray]' (or use --engine local)"
        ) from missing
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayUnavailable(
            f"cannot connect to the Ray cluster at {address or 'RAY_ADDRESS'}: {error}. Start one with "
            "`ray start --head` and pass its address with --address, or use --engine local"
        ) from error
    return ray
