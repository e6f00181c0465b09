"""Joining a Ray cluster, for the commands that run on one (`agentls index --engine ray`,
`agentls batch --engine ray`): one place for the import, the ``ray.init`` call and the messages a user
can act on when Ray is missing or the cluster does not answer."""

from __future__ import annotations

import logging
import socket
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
    _probe(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayUnavailable(
            f"cannot connect to the Ray cluster at {address or 'RAY_ADDRESS'}: {error}. Start one with "
            "`ray start --head` and pass its address with --address, or use --engine local"
        ) from error
    return ray


def _probe(address: str | None, timeout: float = 5.0) -> None:
    """Fail at once when a ``HOST:PORT`` address does not accept connections: ``ray.init`` would retry it
    for minutes before giving up. ``ray://``, ``auto``, ``local`` and None are left to Ray."""
    if not address or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as error:
        raise RayUnavailable(
            f"no Ray cluster answers at {address} ({error.strerror or error}). Start one with "
            "`ray start --head` and pass the address it prints with --address, or use --engine local"
        ) from error
