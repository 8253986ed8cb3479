"""The server's TLS material: its own CA and a server certificate signed by it, or the operator's certificate.

Why a CA of its own (as Docker swarm and kubeadm do): agents at the edge must know they reach *this* server before
they send a token or hold a socket that runs privileged containers. The CA's digest travels in the join token;
an agent pins the CA, so the server certificate can be reissued (`rotate`) without touching any agent. Keys are
ECDSA P-256, made and signed by the `cryptography` package; files live in `DATA_DIR/tls/` with mode 0600.

The live `ssl.SSLContext` is the one uvicorn serves with: `rotate()` loads the new certificate into it, so new
handshakes get the new certificate while established connections go on.

The CA itself is rotated in two steps (server/hub/ca_rotation.py drives them): `begin_ca_rotation` makes the next CA
(`ca-next.pem`/`ca-next.key`) and writes `ca.pem` as the bundle "current, next", which clients (the CLI through
admin.env, agents once told) trust; `finish_ca_rotation` makes the next CA the current one alone, issues the
server certificate from it and serves it. The current CA is always the first certificate of `ca.pem`.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import logging
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from corral.model.errors import InvalidInput
from corral.model.join_token import ca_digest_of_der, ca_digest_of_pem

log = logging.getLogger("corral.tls")

TLS_DIR = "tls"
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
GIVEN_CA_FILE = "given-ca.pem"  # the CA of an operator-given certificate, alone in a file for clients
NEXT_CA_CERT_FILE = "ca-next.pem"
NEXT_CA_KEY_FILE = "ca-next.key"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"
CA_DAYS = 3650
CERT_DAYS = 365
RENEW_BEFORE_DAYS = 30  # a server certificate this close to expiry is reissued at start


@dataclass(frozen=True)
class CertificateInfo:
    serial: int
    not_after: str
    sans: list[str]
    ca_digest: str


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 (the temp file is created 0600, so the key is never readable by others)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(temp, 0o600)
    os.replace(temp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = f"Corral CA {secrets.token_hex(4)}"  # unique: a certificate of an older CA is told apart
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Corral"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _san_entry(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def new_server_certificate(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, sans: list[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if not sans:
        raise InvalidInput("a server certificate needs at least one name or address", field="tls_sans")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_san_entry(s) for s in sans]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def certificate_sans(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names: list[str] = [str(ip) for ip in extension.value.get_values_for_type(x509.IPAddress)]
    names += extension.value.get_values_for_type(x509.DNSName)
    return names


def interface_addresses() -> list[str]:
    """Every address of this machine's interfaces (for a server listening on all of them)."""
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    if ip is None:
        return []
    try:
        out = subprocess.run([ip, "-j", "addr", "show"], capture_output=True, text=True, timeout=5, check=True).stdout
        links = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    found: list[str] = []
    for link in links:
        for info in link.get("addr_info", []):
            local = info.get("local")
            if isinstance(local, str) and not local.startswith("fe80"):
                found.append(local)
    return found


def server_names(listen: list[str], extra: list[str]) -> list[str]:
    """The names and addresses the server certificate is for, in a stable order without duplicates."""
    names = ["localhost", "127.0.0.1", "::1"]
    for hostname in (socket.gethostname(), socket.getfqdn()):
        if hostname:
            names.append(hostname.lower())
    for address in listen:
        if address in ("0.0.0.0", "::", ""):
            names += interface_addresses()
        else:
            names.append(address)
    names += [name.strip() for name in extra if name.strip()]
    seen: dict[str, None] = {}
    for name in names:
        normal = name.lower().strip("[]")
        with contextlib.suppress(ValueError):
            normal = str(ipaddress.ip_address(normal))
        seen.setdefault(normal, None)
    return list(seen)


def split_sans(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class ServerTls:
    """The server's certificate files and the live SSL context that serves them."""

    def __init__(
        self,
        data_dir: Path,
        *,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.dir = data_dir / TLS_DIR
        self.given = cert_file is not None
        if (cert_file is None) != (key_file is None):
            raise InvalidInput("--tls-cert and --tls-key go together", field="tls_cert")
        self.cert_file = cert_file or self.dir / CERT_FILE
        self.key_file = key_file or self.dir / KEY_FILE
        self.ca_file = ca_file or (cert_file if cert_file is not None else self.dir / CA_CERT_FILE)
        self.ca_key_file = self.dir / CA_KEY_FILE
        self.sans: list[str] = []
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    # -- files ----------------------------------------------------------------------------------------------------

    def ensure(self, sans: list[str]) -> None:
        """Create the CA and the server certificate when missing; reissue the certificate when it does not cover
        `sans` or expires within RENEW_BEFORE_DAYS. Operator-given files are only checked."""
        self.sans = list(sans)
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        if self.given:
            for path in (self.cert_file, self.key_file, self.ca_file):
                if not path.is_file():
                    raise InvalidInput(f"TLS file {path} does not exist", field="tls_cert")
            ca = self._load_ca_certificate()
            _write_private(self.ca_path, ca.public_bytes(serialization.Encoding.PEM))
            return
        if not (self.dir / CA_CERT_FILE).exists() or not self.ca_key_file.exists():
            ca_cert, ca_key = new_ca()
            _write_private(self.ca_key_file, _key_pem(ca_key))
            _write_private(self.dir / CA_CERT_FILE, ca_cert.public_bytes(serialization.Encoding.PEM))
            log.info("created the server's CA (%s)", ca_digest_of_der(ca_cert.public_bytes(serialization.Encoding.DER)))
        current = self._current_certificate()
        if current is None or self._needs_new(current, sans):
            self._issue()

    def _needs_new(self, cert: x509.Certificate, sans: list[str]) -> bool:
        if cert.not_valid_after_utc - _now() < datetime.timedelta(days=RENEW_BEFORE_DAYS):
            return True
        if cert.issuer != self._load_ca_certificate().subject:
            return True
        return not set(sans) <= set(certificate_sans(cert))

    def _current_certificate(self) -> x509.Certificate | None:
        try:
            return x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        except (OSError, ValueError):
            return None

    def _load_ca_certificate(self) -> x509.Certificate:
        try:
            certificates = x509.load_pem_x509_certificates(self.ca_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read a CA certificate from {self.ca_file}: {exc}", field="tls_ca") from exc
        return certificates[-1] if self.given else certificates[0]  # a chain file ends with its issuer

    def _issue(self) -> x509.Certificate:
        ca_cert = self._load_ca_certificate()
        ca_key = serialization.load_pem_private_key(self.ca_key_file.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise InvalidInput(f"{self.ca_key_file} is not an ECDSA key", field="tls_ca")
        cert, key = new_server_certificate(ca_cert, ca_key, self.sans)
        _write_private(self.key_file, _key_pem(key))
        _write_private(self.cert_file, cert.public_bytes(serialization.Encoding.PEM))
        log.info("issued the server certificate (serial %x) for %s", cert.serial_number, ", ".join(self.sans))
        return cert

    # -- what others read ---------------------------------------------------------------------------------------------

    @property
    def ca_pem(self) -> bytes:
        return self._load_ca_certificate().public_bytes(serialization.Encoding.PEM)

    @property
    def ca_digest(self) -> str:
        return ca_digest_of_der(self._load_ca_certificate().public_bytes(serialization.Encoding.DER))

    @property
    def ca_path(self) -> Path:
        """A file holding only the CA certificate (clients load it as their trust anchor)."""
        return self.dir / (GIVEN_CA_FILE if self.given else CA_CERT_FILE)

    def info(self) -> CertificateInfo:
        cert = self._current_certificate()
        if cert is None:
            raise InvalidInput(f"no server certificate at {self.cert_file}", field="tls_cert")
        return CertificateInfo(
            serial=cert.serial_number,
            not_after=cert.not_valid_after_utc.isoformat(),
            sans=certificate_sans(cert),
            ca_digest=self.ca_digest,
        )

    def context(self) -> ssl.SSLContext:
        """The live server context (created once; `rotate` reloads it in place)."""
        with self._lock:
            if self._context is None:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.load_cert_chain(self.cert_file, self.key_file)
                self._context = context
            return self._context

    # -- CA rotation --------------------------------------------------------------------------------------------

    @property
    def next_ca_file(self) -> Path:
        return self.dir / NEXT_CA_CERT_FILE

    @property
    def rotating(self) -> bool:
        return not self.given and self.next_ca_file.exists()

    @property
    def trust_bundle(self) -> bytes:
        """What clients must trust now: the current CA, then the next one while a rotation runs."""
        pem = self.ca_pem
        if self.rotating:
            pem += self.next_ca_file.read_bytes()
        return pem

    @property
    def next_ca_digest(self) -> str:
        return ca_digest_of_pem(self.next_ca_file.read_bytes()) if self.rotating else ""

    def begin_ca_rotation(self) -> str:
        """Make the next CA (once: a rotation already begun keeps its CA) and publish the bundle in `ca.pem`;
        return the next CA's digest. The server certificate stays the current CA's until `finish_ca_rotation`."""
        if self.given:
            raise InvalidInput(
                "the server uses an operator-given certificate: replace its files and restart, or rotate-cert",
                field="tls_ca",
            )
        with self._lock:
            if not self.rotating:
                ca_cert, ca_key = new_ca()
                _write_private(self.dir / NEXT_CA_KEY_FILE, _key_pem(ca_key))
                _write_private(self.next_ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
            _write_private(self.dir / CA_CERT_FILE, self.trust_bundle)
            log.info("CA rotation begun: next CA %s", self.next_ca_digest)
            return self.next_ca_digest

    def finish_ca_rotation(self) -> CertificateInfo:
        """The next CA becomes the only one: its key and certificate replace the current ones, the server
        certificate is issued from it and served from the next handshake on."""
        with self._lock:
            if not self.rotating:
                raise InvalidInput("no CA rotation is running", field="tls_ca")
            _write_private(self.ca_key_file, (self.dir / NEXT_CA_KEY_FILE).read_bytes())
            _write_private(self.dir / CA_CERT_FILE, self.next_ca_file.read_bytes())
            (self.dir / NEXT_CA_KEY_FILE).unlink()
            self.next_ca_file.unlink()
            self._issue()
            if self._context is not None:
                self._context.load_cert_chain(self.cert_file, self.key_file)
        log.info("CA rotation finished: the server certificate is issued by %s", self.ca_digest)
        return self.info()

    def rotate(self) -> CertificateInfo:
        """A new server certificate from the same CA (or the operator's files read again), served from the next
        handshake on."""
        with self._lock:
            if not self.given:
                self._issue()
            if self._context is not None:
                self._context.load_cert_chain(self.cert_file, self.key_file)
        return self.info()
