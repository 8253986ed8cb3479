"""A host's network plumbing, driven by the agent: the overlay (VXLAN, or slices routed over WireGuard), firewall
and compose-network segment filters, the NAT to DNS and metadata, and HAProxy configurations for LB services."""
