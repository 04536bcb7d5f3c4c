"""The update service (docs/architecture.md, "The flow"): serves the signed catalog and content over
HTTPS.

Modules: ``tls`` (the service CA and certificates), ``config`` (``ServiceConfig``), ``names``
and ``health`` (pure decisions), ``resign`` (the re-signing schedule), ``app`` (the ASGI
application), ``server`` (uvicorn wiring: ``serve`` and ``running_server``).
"""

from __future__ import annotations
