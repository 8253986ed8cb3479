"""The vocabulary every layer shares: frozen entities, states, names, errors and the agent wire protocol.

Why: one place defines what a host or an environment *is*, with no I/O, so the pure core and every edge agree.
Standard library only.
"""
