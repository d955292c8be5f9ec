"""File-drop order sync for Mirakl Connect."""

from etl.core.process_setup import tune_libraries
from etl.core.version import __version__

# Before anything imports pyarrow or numpy, which read their settings once (etl/process_setup.py).
tune_libraries()

__all__ = ["__version__"]
