"""cxloop: measure customer relationships and improve them continuously.

The public Python API: open a :class:`Store` by URL, import files into it, and read its status.

>>> from cxloop import Store, import_file
>>> store = Store.open("cxloop.duckdb")          # doctest: +SKIP
>>> options = ImportOptions(preset="shopify")
>>> result = import_file(store, "order-lines", "orders_export.csv", options)  # doctest: +SKIP
"""

from cxloop.errors import ConfigError, CxloopError, InputError, StoreBusyError, StoreWriteError
from cxloop.ingest.pipeline import ImportOptions, ImportResult, import_file
from cxloop.store.store import Store

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CxloopError",
    "ImportOptions",
    "ImportResult",
    "InputError",
    "Store",
    "StoreBusyError",
    "StoreWriteError",
    "__version__",
    "import_file",
]
