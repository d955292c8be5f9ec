"""A local double of the Mirakl Connect API on loopback (DESIGN.md section 8).

It shares no code with the client (only the shipped schemas and format checks), so it cannot
share its bugs. Start it with ``SandboxServer`` (tests) or ``python -m etl.sandbox`` (people).
"""

from .app import SandboxApp
from .config import SandboxConfig
from .server import SandboxServer, main

__all__ = ["SandboxApp", "SandboxConfig", "SandboxServer", "main"]
