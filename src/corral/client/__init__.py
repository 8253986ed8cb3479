"""Typed HTTP client of the Corral API, used by the CLI, tests and benchmarks.

Why: one place knows URLs, authentication and how error bodies map back onto the model's error tree.
"""

from corral.client.http import CorralClient

__all__ = ["CorralClient"]
