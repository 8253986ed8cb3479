"""Who may call what: authentication, roles and route rules, the request guard, audit, idempotency, LDAP, the
server's TLS and CA, and the credentials of service accounts."""
