"""The platform's outbound HTTP: one POST to a partner's URL that cannot be turned against us.

- https only (http too where the deployment allows loopback receivers: the local stack);
- the host is resolved once and every address it resolves to must be public: not private,
  loopback (unless allowed), link-local, multicast, reserved, unspecified, shared (100.64/10), or
  the instance metadata service (169.254.169.254, fd00:ec2::254). The connection is then made to
  that checked address (TLS still verifies the certificate against the host name), so a DNS answer
  that changes between the check and the connect (rebinding) cannot slip a private address in;
- no redirects: a 3xx is the receiver's answer, a failed attempt;
- the response body is read up to a cap (an answer past it is a failed attempt, even with a 2xx)
  and the whole attempt is bounded by a timeout, so a slow, huge or hanging receiver is a failed
  attempt, never a stuck dispatcher.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
SHARED = ipaddress.ip_network("100.64.0.0/10")


class EgressRefused(ValueError):
    """The URL must not be called: ``reason`` says why (a subscription's save answers with it)."""


class AnswerTooLarge(OSError):
    """The receiver's answer went past MAX_RESPONSE_BYTES: a failed attempt, as the issue's bad input says."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most MAX_RESPONSE_BYTES
    headers: dict[str, str]


def check_address(address: str, *, allow_loopback: bool) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA:
        raise EgressRefused(f"{address} is the instance metadata service")
    if ip.is_loopback:
        if allow_loopback:
            return
        raise EgressRefused(f"{address} is a loopback address")
    if (ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
            or (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED)):
        raise EgressRefused(f"{address} is not a public address")


def check_url(url: str, *, allow_loopback: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of a URL the platform may call; EgressRefused otherwise."""
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_loopback else ("https",)
    if parts.scheme not in allowed:
        raise EgressRefused("only https:// URLs are delivered to")
    if not parts.hostname or parts.username or parts.password:
        raise EgressRefused("the URL needs a host and no credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EgressRefused("the URL's port is not a number from 1 to 65535") from exc
    if parts.scheme == "http":  # only for loopback receivers
        for address in resolve(parts.hostname, port):
            if not ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
                raise EgressRefused("plain http:// is only for loopback receivers")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, target


def resolve(host: str, port: int) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except socket.gaierror as exc:
        raise EgressRefused(f"{host} does not resolve") from exc


def safe_addresses(host: str, port: int, *, allow_loopback: bool) -> list[str]:
    addresses = resolve(host, port)
    for address in addresses:  # every answer must be safe: a mixed answer is a rebinding attempt
        check_address(address, allow_loopback=allow_loopback)
    return addresses


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float, ca_file: str | None = None):
        self._tls = ssl.create_default_context(cafile=ca_file)  # verifies the certificate against the host name
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float, ca_file: str | None = None):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(url: str, body: bytes, headers: dict[str, str], *, allow_loopback: bool,
         timeout: float = TIMEOUT_SECONDS, ca_file: str | None = None) -> Answer:
    """POST once; raises EgressRefused (never to be retried) or OSError/HTTPException (a failed attempt).
    ``ca_file``: the CAs an https receiver's certificate must chain to, instead of the system's."""
    scheme, host, port, target = check_url(url, allow_loopback=allow_loopback)
    address = safe_addresses(host, port, allow_loopback=allow_loopback)[0]
    connection_type = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    connection = connection_type(host, address, port, timeout, ca_file)
    deadline = time.monotonic() + timeout
    try:
        connection.request("POST", target, body=body, headers={**headers, "user-agent": "MangaAssist-Webhooks/1"})
        response = connection.getresponse()
        data, left = b"", MAX_RESPONSE_BYTES
        while left > 0 and time.monotonic() < deadline:
            chunk = response.read(min(left, 8192))
            if not chunk:
                break
            data, left = data + chunk, left - len(chunk)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no complete answer within {timeout} s")
        if left == 0 and response.read(1):  # whatever its status: a receiver must answer briefly
            raise AnswerTooLarge(f"an answer longer than {MAX_RESPONSE_BYTES} bytes")
        return Answer(response.status, data, {k.lower(): v for k, v in response.getheaders()})
    finally:
        connection.close()
