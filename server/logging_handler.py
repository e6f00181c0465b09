"""Log records to the editor's output panel, through ``window/logMessage``.

`LspLogHandler` is a `logging.Handler` attached to the ``server``, ``indexing`` and ``agent`` loggers (never
to pygls' own, which logs every message it sends: that would loop). Records may come from any thread
(indexing, search, analysis); they are sent from the event loop, the one thread that writes to the client.
A record logged while a log message is being sent is dropped rather than sent recursively.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable

from lsprotocol import types

__all__ = ["LOGGERS", "LspLogHandler", "install_log_handler", "message_type"]

LOGGERS: tuple[str, ...] = ("server", "indexing", "agent")
"""The loggers whose records reach the editor."""

LEVELS: dict[str, int] = {
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def message_type(levelno: int) -> types.MessageType:
    """The LSP message type of a logging level."""
    if levelno >= logging.ERROR:
        return types.MessageType.Error
    if levelno >= logging.WARNING:
        return types.MessageType.Warning
    if levelno >= logging.INFO:
        return types.MessageType.Info
    return types.MessageType.Log


class _NoTraceback(logging.Formatter):
    """One line per record for the editor: the exception's type and message, never a Python traceback
    (that stays in the server's stderr log)."""

    def format(self, record: logging.LogRecord) -> str:
        line = self._style.format(_Message(record))
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f" ({type(error).__name__}: {error}; the traceback is in the server log)"
        return line


class _Message:
    """The attributes `%(name)s: %(message)s` needs, without the record's cached traceback text."""

    def __init__(self, record: logging.LogRecord) -> None:
        self.__dict__.update(record.__dict__)
        self.message = record.getMessage()


class LspLogHandler(logging.Handler):
    """Sends each record as a ``window/logMessage`` notification."""

    def __init__(
        self,
        send: Callable[[types.LogMessageParams], None],
        loop: Callable[[], asyncio.AbstractEventLoop | None],
        level: int = logging.INFO,
    ) -> None:
        super().__init__(level)
        self._send = send
        self._loop = loop
        self._busy = threading.local()
        self.setFormatter(_NoTraceback("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "active", False):
            return
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        try:
            params = types.LogMessageParams(type=message_type(record.levelno), message=self.format(record))
        except Exception:
            self.handleError(record)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(params)
        else:
            try:
                loop.call_soon_threadsafe(self._deliver, params)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _deliver(self, params: types.LogMessageParams) -> None:
        self._busy.active = True
        try:
            self._send(params)
        except Exception:  # the client is gone; the stderr log still has the record
            pass
        finally:
            self._busy.active = False

    def set_level_name(self, name: str, loggers: Iterable[str] = LOGGERS) -> None:
        """Set the level from a settings value (``error``, ``warning``, ``info``, ``debug``)."""
        self.setLevel(LEVELS.get(name, logging.INFO))
        for logger_name in loggers:
            logger = logging.getLogger(logger_name)
            if self in logger.handlers and logger.getEffectiveLevel() > self.level:
                logger.setLevel(self.level)


def install_log_handler(handler: LspLogHandler, loggers: Iterable[str] = LOGGERS) -> Callable[[], None]:
    """Attach `handler` to `loggers`, lowering their level to the handler's if needed; returns an undo.

    Records below a logger's level never reach any handler, so the loggers must let the handler's level
    through; handlers of the root logger (stderr) keep their own levels.
    """
    attached: list[tuple[logging.Logger, int]] = []
    for name in loggers:
        logger = logging.getLogger(name)
        attached.append((logger, logger.level))
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > handler.level:
            logger.setLevel(handler.level)

    def undo() -> None:
        for logger, level in attached:
            logger.removeHandler(handler)
            logger.setLevel(level)

    return undo
