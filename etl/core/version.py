"""The version of the package, where every room can read it without importing the package."""

__version__ = "0.1.0"
