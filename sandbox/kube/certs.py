"""A local certificate authority that issues real X.509 certificates, and Go duration parsing."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(text: str) -> timedelta:
    """Parse a Go duration such as `2160h`, `1h30m` or `720h0m0s`."""
    text = text.strip()
    if text in ("0", ""):
        return timedelta(0)
    pos, total = 0, 0.0
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    for m in _PART.finditer(text):
        if m.start() != pos:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {text!r}")
    return timedelta(seconds=sign * total)


@dataclass(frozen=True)
class Issued:
    """PEM material of one issued certificate and its validity window."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    not_before: datetime
    not_after: datetime


class LocalCA:
    """A self-signed CA created at start; `issue` signs leaf certificates for DNS names."""

    def __init__(self, common_name: str = "hello-chatops sandbox CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC).replace(microsecond=0)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def ca_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, dns_names: list[str], duration: timedelta, *, common_name: str | None = None,
              ip_addresses: list[str] | None = None, algorithm: str = "RSA", size: int | None = None) -> Issued:
        """Sign a certificate valid from now (to the second) for `duration`."""
        if algorithm.upper() == "ECDSA":
            curve = {384: ec.SECP384R1(), 521: ec.SECP521R1()}.get(size or 256, ec.SECP256R1())
            key = ec.generate_private_key(curve)
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=size or 2048)
        not_before = datetime.now(UTC).replace(microsecond=0)
        not_after = not_before + duration
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses or []]
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=not common_name)
        cert = builder.sign(self._key, hashes.SHA256())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem, self.ca_pem, not_before, not_after)
