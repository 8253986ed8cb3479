"""The agent hub: the agents' websockets, their reports, the streams relayed to clients and the requests the
server makes of agents (builds, image pulls, volumes, the CA rotation)."""
