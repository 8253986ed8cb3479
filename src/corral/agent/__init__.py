"""The host agent: registers a machine with the server, reports its engine's containers, follows orders.

Entry point: `run_agent` (wired to `corral agent` by the CLI).
"""

from corral.agent.run import run_agent

__all__ = ["run_agent"]
