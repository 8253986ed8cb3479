"""The cluster's state in memory: environments, hosts, stacks, services, slots, leftovers and reported containers,
indexed, versioned, read as immutable snapshots (`ClusterState.snapshot()`); the database stays the durable truth.

Why a layer of its own: the server's loops and views asked the database for the same rows again and again (bench
P3); here every committed write is applied to memory right after its commit, so readers get a consistent view
without a query. It sits above the store (it reads through it) and below the server (which reads from it).
"""
