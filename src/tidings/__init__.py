"""Tidings: a secure software-update distribution system (see docs/architecture.md)."""

from __future__ import annotations

__version__ = "0.1.0"
