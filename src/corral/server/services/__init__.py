"""Application services: what the routes, the UI and the catalog call (`corral up`'s checks and writes, hosts,
catalogs, builds and secrets of a stack). They drive the control loop and the agent hub, never the HTTP routes."""
