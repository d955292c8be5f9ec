"""File-drop order sync for Mirakl Connect."""

__version__ = "0.1.0"
