"""Corral's web UI, served by the server under /ui (see corral.web.app)."""

from corral.web.app import create_ui, mount_ui

__all__ = ["create_ui", "mount_ui"]
