"""The control loop: the orchestrator's pass over the in-memory state and the passes it runs after deciding
(networks, host ports, occupancy, certificates and secrets sent with the desired sets, build cleanup)."""
