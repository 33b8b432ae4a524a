"""The ``cxloop`` command line: parses, calls the core library, renders. No business logic here."""

from cxloop.cli.app import app, main

__all__ = ["app", "main"]
