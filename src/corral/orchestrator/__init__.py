"""Decisions without I/O: host liveness, scheduling rules, the reconciler, upgrades, dependencies and sidekicks,
each a pure function over a snapshot that returns a plan (tested with Hypothesis)."""
