"""The Redis URL a client is given: spec.redis.url plus the ACL user name and TLS files.

redis-py reads ``ssl_ca_certs``, ``ssl_certfile`` and ``ssl_keyfile`` from a URL's query and
the user name from its user info, so the workers need no settings of their own for them
(pure: no I/O)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Where worker pods mount the Secrets of spec.redis.caSecretRef and clientCertSecretRef.
WORKER_CA_DIR = "/etc/jobqueue/redis-ca"
WORKER_CLIENT_DIR = "/etc/jobqueue/redis-client"
CA_FILE = "ca.crt"
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"


def connection_url(
    url: str,
    *,
    username: str | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> str:
    """``url`` with ``username`` as its user (replacing one in the URL) and the TLS files
    in its query."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if username:
        host = netloc.rsplit("@", 1)[-1]
        netloc = f"{quote(username, safe='')}@{host}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    for name, value in (("ssl_ca_certs", ca_file), ("ssl_certfile", cert_file),
                        ("ssl_keyfile", key_file)):  # fmt: skip
        if value:
            query = [(k, v) for k, v in query if k != name] + [(name, value)]
    return urlunsplit(
        (parts.scheme, netloc, parts.path, urlencode(query, safe="/"), parts.fragment)
    )
