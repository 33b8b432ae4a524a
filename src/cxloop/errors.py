"""The errors cxloop raises on purpose: each one says what was wrong and where."""

from __future__ import annotations


class CxloopError(Exception):
    """Base of every error cxloop reports to a user (the CLI prints it and exits 1)."""


class InputError(CxloopError):
    """A whole input file cannot be imported; nothing was written.

    Carries the file and, where it is known, the line and field, so that the message points at
    the exact place to fix.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self._message())

    def _message(self) -> str:
        where = [
            part
            for part in (
                self.file,
                f"line {self.line}" if self.line is not None else None,
                f"field {self.field!r}" if self.field else None,
            )
            if part
        ]
        return f"{': '.join(where)}: {self.reason}" if where else self.reason


class StoreBusyError(CxloopError):
    """The embedded DuckDB file is held by another process (DuckDB allows one writer)."""


class ConfigError(CxloopError):
    """A setting, preset or mapping is invalid."""


class StoreWriteError(CxloopError):
    """The database refused a write; the transaction was rolled back, so nothing was written."""


def is_interrupted_query(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB's answer to Ctrl-C: it interrupts the running query with a
    ``RuntimeError`` (or ``InterruptException``) instead of letting ``KeyboardInterrupt`` through."""
    # SQLAlchemy wraps the driver's error; a signal arrives as RuntimeError, interrupt() as
    # InterruptException.
    cause = getattr(exc, "orig", None) or exc
    return isinstance(cause, RuntimeError | _duckdb_interrupt()) and "interrupt" in str(cause).lower()


def _duckdb_interrupt() -> type[Exception]:
    import duckdb  # deferred: errors is imported by everything, duckdb only where a store is open

    return duckdb.InterruptException
