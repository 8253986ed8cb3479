"""The host agent: registers a machine with the server, reports its engine's containers, follows orders.

Entry point: `run_agent` (run by `corral agent`, and by `python -m corral agent` through agent/command.py).
"""

from corral.agent.run import run_agent

__all__ = ["run_agent"]
