"""The Corral server: REST API under /v1, the agent hub, the event stream, host liveness and provisioning.

Why one process: like the system we model, operators run one thing; state lives in the store and in memory.
"""
