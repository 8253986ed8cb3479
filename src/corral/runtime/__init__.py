"""The container runtime seam: all that speaks to a Docker engine (the docker SDK is imported only here)."""
