"""LDAP / Active Directory as a second identity source (ldap3): bind, find the user, check their password by
binding as them, read their groups; groups map to environment roles through memberships of kind `group`.

Why groups are cached, not stored: a user removed from a group in the directory must lose the role without anyone
touching Corral. Groups are read at every sign-in and again once `ldap_cache_seconds` have passed since the last
read (0: at every call), so the removal takes effect at the next sign-in or within the cache time. The directory
is reached over StartTLS (verified against `ldap_ca_file`) unless the URL is ldaps://; plain LDAP only when
`ldap_starttls` is off, which the operator has to choose. The service bind password is never logged.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from corral.config import Settings
from corral.model.errors import Unauthorized, Unavailable

log = logging.getLogger("corral.server.ldap")
TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class DirectoryUser:
    username: str
    dn: str
    groups: tuple[str, ...]


class LdapIdentity:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        tls = None
        if settings.ldap_url.startswith("ldaps://") or settings.ldap_starttls:
            tls = Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_file=settings.ldap_ca_file or None,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.server = Server(settings.ldap_url, get_info=NONE, tls=tls, connect_timeout=TIMEOUT_SECONDS)
        self._groups: dict[str, tuple[float, tuple[str, ...]]] = {}  # username -> (read at, groups)
        self._lock = threading.Lock()

    def authenticate(self, username: str, password: str) -> DirectoryUser:
        """The directory's user for this name and password; Unauthorized for any mismatch."""
        if not password:
            raise Unauthorized("wrong user name or password, or the user is disabled")
        service = self._connection()
        try:
            dn = self._find_user(service, username)
            if dn is None:
                raise Unauthorized("wrong user name or password, or the user is disabled")
            groups = self._read_groups(service, dn)
        finally:
            service.unbind()
        self._connection(dn, password).unbind()  # the password check: a bind as the user
        user = DirectoryUser(username=username, dn=dn, groups=groups)
        with self._lock:
            self._groups[username] = (time.monotonic(), groups)
        return user

    def groups_of(self, username: str) -> tuple[str, ...]:
        """The user's groups, read again from the directory once the cache time has passed."""
        with self._lock:
            cached = self._groups.get(username)
        if cached is not None and time.monotonic() - cached[0] < self.settings.ldap_cache_seconds:
            return cached[1]
        service = self._connection()
        try:
            dn = self._find_user(service, username)
            groups = self._read_groups(service, dn) if dn is not None else ()
        finally:
            service.unbind()
        with self._lock:
            self._groups[username] = (time.monotonic(), groups)
        return groups

    def _connection(self, dn: str | None = None, password: str | None = None) -> Connection:
        """A bound connection (as the service account when no DN is given), StartTLS first when configured."""
        settings = self.settings
        user = dn if dn is not None else (settings.ldap_bind_dn or None)
        secret = password if dn is not None else (settings.ldap_bind_password or None)
        connection = Connection(self.server, user=user, password=secret, receive_timeout=TIMEOUT_SECONDS)
        try:
            connection.open()
            if settings.ldap_starttls and not settings.ldap_url.startswith("ldaps://"):
                connection.start_tls()
            if not connection.bind():
                connection.unbind()
                if dn is not None:
                    raise Unauthorized("wrong user name or password, or the user is disabled")
                raise Unavailable("the LDAP directory refused the service account's bind")
        except LDAPException as exc:
            raise Unavailable(f"the LDAP directory cannot be reached: {type(exc).__name__}") from exc
        return connection

    def _find_user(self, connection: Connection, username: str) -> str | None:
        query = self.settings.ldap_user_filter.replace("{username}", escape_filter_chars(username))
        connection.search(self.settings.ldap_user_base, query, SUBTREE, attributes=[], size_limit=2)
        if len(connection.entries) != 1:
            return None
        return str(connection.entries[0].entry_dn)

    def _read_groups(self, connection: Connection, dn: str) -> tuple[str, ...]:
        query = self.settings.ldap_group_filter.replace("{dn}", escape_filter_chars(dn))
        connection.search(self.settings.ldap_group_base, query, SUBTREE, attributes=["cn"], size_limit=1000)
        return tuple(sorted(str(entry.cn.value) for entry in connection.entries if entry.cn.value))
