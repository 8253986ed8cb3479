"""Host drivers: make and remove the machines Corral manages (local netns hosts today; ssh and cloud later)."""

from corral.provision.local import LocalHostDriver, LocalHostRecord

__all__ = ["LocalHostDriver", "LocalHostRecord"]
