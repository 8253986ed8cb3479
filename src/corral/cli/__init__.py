"""The `corral` command-line interface: verbs after docker and rancher, speaking to the server only via the client."""
