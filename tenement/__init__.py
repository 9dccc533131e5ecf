"""tenement: a process hypervisor for many single-tenant apps on one Linux server.

Layers, each importing only from those before it (tests/unit/test_layers.py enforces it):

    config  <-  store  <-  supervisor  <-  proxy, api  <-  server

``cli`` talks to a running server over HTTP; it may read the config and open the store
for the local commands (``config``, ``db``, ``token-gen``), never the supervisor.
"""

from tenement._version import __version__

__all__ = ["__version__"]
