"""Placeholder for a later issue; see docs/architecture.md."""
