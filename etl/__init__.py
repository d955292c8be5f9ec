"""File-drop order sync for Mirakl Connect."""

from etl.memory import keep_freed_memory

# Before anything imports pyarrow, whose allocator reads its settings once (see etl/memory.py).
keep_freed_memory()

__version__ = "0.1.0"
