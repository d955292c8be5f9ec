"""File-drop order sync for Mirakl Connect."""

from etl.core.process_setup import tune_libraries

# Before anything imports pyarrow or numpy, which read their settings once (etl/process_setup.py).
tune_libraries()

__version__ = "0.1.0"
