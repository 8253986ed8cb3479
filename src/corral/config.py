"""Every setting from `CORRAL_*` environment variables (12-factor), with defaults that work on one machine.

Why one module outside the layers: server, agent, CLI and drivers read the same names; nothing here does I/O
beyond reading the environment and computing paths.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/corral")
    return Path.home() / ".local" / "share" / "corral"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRAL_", extra="ignore")

    data_dir: Path = default_data_dir()
    database_url: str = ""  # empty: SQLite file `corral.db` in data_dir
    host_grace_seconds: float = 60.0
    heartbeat_seconds: float = 5.0
    missed_heartbeats: int = 3  # silent for this many heartbeats -> `reconnecting`
    agent_max_backoff_seconds: float = 5.0
    # the agent builds the managed overlay (Docker network, VXLAN, DNS, metadata) on its host; 0 for hosts that must
    # not (no VXLAN in the kernel, a shared machine): managed containers placed there wait with a reason
    agent_overlay: bool = True
    provisioning_timeout_seconds: float = 120.0
    # A container still not running this long after it was placed or changed puts its service in `error`, with
    # the reason (Rancher's services stayed "Activating" forever).
    activating_deadline_seconds: float = 120.0
    # Host ports for `ports: ["80"]` entries (published on a port the server picks), like Rancher's servicesPortRange.
    host_port_range: str = "49153-65535"
    # The overlay subnet of the `default` environment and of environments created without one (model/network.py's
    # DEFAULT_SUBNET): a /24 per host, 8,192 hosts (a /16 held only 256).
    default_subnet: str = "10.32.0.0/11"
    # Quotas of every environment that does not set its own (model/quotas.py; `corral env update --quota`): services
    # and containers (the sum of the services' scales) per stack and per environment.
    quota_services_per_stack: int = 200
    quota_services_per_environment: int = 1000
    quota_containers_per_stack: int = 5000
    quota_containers_per_environment: int = 10000

    # TLS (server/security/tls.py): HTTPS and WSS on every listener unless insecure_http; extra names and addresses for
    # the server certificate (comma-separated); or the operator's own certificate, key and (optionally) its CA.
    insecure_http: bool = False
    tls_sans: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    # The URL other machines reach the server at, put in the agent command `tokens create` prints
    # (server/shared/advertise.py); empty: the address the server listens on (its primary address when it listens on
    # every interface).
    advertise_url: str = ""

    # Local host driver (network namespaces + a dockerd each on this machine).
    local_driver: bool = True
    local_bridge: str = "corralbr0"
    local_subnet: str = "198.18.0.0/24"
    local_prefix: str = "corral"  # netns names are PREFIX-NAME
    local_images: str = "corral/*"  # comma-separated repository patterns copied into each new host's engine
    docker_host: str = "unix:///var/run/docker.sock"  # the machine's own engine (source of local images)
    # Builds (server/control/build_cleanup.py): how often superseded built images and unneeded build files are looked
    # for, and how old an unneeded context or saved image must be before it is removed
    build_cleanup_seconds: float = 15.0
    build_file_grace_seconds: float = 600.0
    local_supervise_seconds: float = 5.0  # how often dead local hosts are brought back; 0 switches it off
    # ... and local agents running older code than the installed one restarted (off: tests that edit code live)
    restart_outdated_agents: bool = True

    # Hostile input (server/security/guard.py): request bodies over this are refused with 413 before anything is parsed;
    # endpoints anyone may call (agent registration, UI login) take at most `public_max_body_bytes`.
    max_body_bytes: int = 16 * 1024 * 1024
    public_max_body_bytes: int = 1024 * 1024
    # After this many failed authentications from one address within a minute, it gets 429 for `auth_block_seconds`.
    auth_failures_per_minute: int = 10
    auth_block_seconds: float = 60.0
    # Audit log retention (issue 16): entries older than this many days, and all but the newest rows, are dropped.
    audit_retention_days: float = 90.0
    audit_max_rows: int = 200_000
    # A UI login lasts this long (the session's key expires with it).
    session_hours: float = 12.0
    # LDAP / Active Directory sign-in (server/security/ldap_identity.py); off while `ldap_url` is empty.
    ldap_url: str = ""  # ldap://host:389 (with StartTLS) or ldaps://host:636
    ldap_starttls: bool = True
    ldap_ca_file: str = ""  # the CA that issued the directory's certificate (empty: the system's)
    ldap_bind_dn: str = ""  # the service account that searches users and groups (empty: anonymous)
    ldap_bind_password: str = ""
    ldap_user_base: str = ""
    ldap_user_filter: str = "(uid={username})"  # AD: (sAMAccountName={username})
    ldap_group_base: str = ""
    ldap_group_filter: str = "(member={dn})"  # groups whose `member` is the user; their `cn` names them
    ldap_cache_seconds: float = 300.0  # group changes in the directory apply within this time (or at sign-in)
    # `dir` catalogs and `file://` git catalogs read the server's own file system: only when the operator allows it.
    catalog_allow_local: bool = False
    # Wall-time budget of rendering one catalog template version (catalog/gotemplate/budget.py).
    template_render_seconds: float = 5.0
    # A warning with the loop thread's stack when the server's event loop runs nothing for this long
    # (server/shared/loop_watchdog.py); 0 switches the watchdog off.
    loop_stall_seconds: float = 2.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'corral.db'}"

    @property
    def local_hosts_dir(self) -> Path:
        return self.data_dir / "hosts"


def load_settings() -> Settings:
    return Settings()
