"""Corral: environments, hosts and stacks of services on real Docker engines.

Why this package is split the way it is: see docs/architecture.md (layers point one way, checked by import-linter).
"""

__version__ = "0.1.0"
