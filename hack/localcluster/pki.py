"""Certificates and keys for the local control plane, made with `cryptography`.

One CA signs everything: the serving certificates of the API server and the kubelet, the
client certificates of the admin, the controllers, the node and kube-proxy, and (as cluster
signer) CSRs.
Service-account tokens are signed with a separate RSA key pair.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)
SERVICE_IP = "10.96.0.1"  # first address of --service-cluster-ip-range
APISERVER_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
APISERVER_IPS = ("127.0.0.1", SERVICE_IP)

# file stem -> (common name, organisation) of each client certificate
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    # the API server's identity towards aggregated API servers (requestheader authentication)
    "front-proxy-client": ("front-proxy-client", None),
    # the API server's identity towards the kubelet (logs, exec)
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", None),
    # bound to the system:node-proxier role by the API server's defaults
    "kube-proxy": ("system:kube-proxy", None),
}


@dataclass(frozen=True)
class Pki:
    """Paths of the files made by `ensure_pki` (certificate files are `<stem>.crt/.key`)."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def client_cert(self, stem: str) -> Path:
        return self.dir / f"{stem}.crt"

    def client_key(self, stem: str) -> Path:
        return self.dir / f"{stem}.key"


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
    )


def _make_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("localcluster-ca")
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
    _write_key(pki.ca_key, key)
    _write_cert(pki.ca_cert, cert)
    return cert, key


def _issue(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    cert_path: Path,
    key_path: Path,
    san: x509.SubjectAlternativeName | None = None,
) -> None:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    _write_key(key_path, key)
    _write_cert(cert_path, builder.sign(ca_key, hashes.SHA256()))


def _load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _san(names: tuple[str, ...], ips: tuple[str, ...]) -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    )


def ensure_pki(directory: Path) -> Pki:
    """Create the CA, certificates and keys that are missing; later calls reuse what is there
    (so a state dir made by an older version gains new files without losing its CA)."""
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = _load_ca(pki) if pki.ca_key.exists() and pki.ca_cert.exists() else _make_ca(pki)
    for stem, (cn, org) in CLIENTS.items():
        if not pki.client_cert(stem).exists():
            _issue(
                ca,
                _name(cn, org),
                ExtendedKeyUsageOID.CLIENT_AUTH,
                pki.client_cert(stem),
                pki.client_key(stem),
            )
    if not pki.sa_pub.exists():
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(pki.sa_key, sa_key)
        pki.sa_pub.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return pki


def _sans_of(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    names = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return names, ips


def ensure_server_cert(
    pki: Pki, stem: str, common_name: str, names: tuple[str, ...], ips: tuple[str, ...]
) -> tuple[Path, Path]:
    """A serving certificate `<stem>.crt/.key` for these names and addresses, issued again
    when the one there lacks any (a cluster's node addresses may change between runs)."""
    cert, key = pki.client_cert(stem), pki.client_key(stem)
    if cert.exists() and key.exists():
        have_names, have_ips = _sans_of(cert)
        if set(names) <= have_names and set(ips) <= have_ips:
            return cert, key
    _issue(_load_ca(pki), _name(common_name), ExtendedKeyUsageOID.SERVER_AUTH, cert, key,
           _san(names, ips))  # fmt: skip
    return cert, key


def ensure_client_cert(
    pki: Pki, stem: str, common_name: str, organisation: str | None
) -> tuple[Path, Path]:
    """A client certificate issued once (e.g. a node's, whose name is an option)."""
    cert, key = pki.client_cert(stem), pki.client_key(stem)
    if not (cert.exists() and key.exists()):
        _issue(_load_ca(pki), _name(common_name, organisation), ExtendedKeyUsageOID.CLIENT_AUTH,
               cert, key)  # fmt: skip
    return cert, key
