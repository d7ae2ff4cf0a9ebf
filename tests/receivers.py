"""Webhook receivers on 127.0.0.1 for the notification tests: each answers from a script (a status,
a delay, a huge body, a hang-up), records what it got, and can speak https with a certificate from
a development CA made here (what NOTIFY_CA_FILE names)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_dev_ca(folder: Path) -> dict[str, Path]:
    """A CA and a certificate for localhost and 127.0.0.1 it signed: {"ca", "cert", "key"} PEM files in ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, key, issuer: str, issuer_key, *, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
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
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("MangaAssist test CA", ca_key, "MangaAssist test CA", ca_key, ca=True)
    leaf = build("127.0.0.1", leaf_key, "MangaAssist test CA", ca_key, ca=False)
    files = {"ca": folder / "ca.pem", "cert": folder / "receiver.pem", "key": folder / "receiver.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


class Receiver:
    """Answers each POST with the next scripted answer (200 once the script is used up): an int
    status, or {"status", "delay" (s), "body" (bytes), "close" (hang up without answering)}."""

    def __init__(self, answers=None, tls: dict[str, Path] | None = None, path: str = "/hooks"):
        self.answers = list(answers or [])
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        outer = self

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with outer._lock:
                    outer.requests.append(
                        {
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "path": self.path,
                            "at": time.monotonic(),
                        }
                    )
                    answer = outer.answers.pop(0) if outer.answers else 200
                answer = answer if isinstance(answer, dict) else {"status": answer}
                time.sleep(answer.get("delay", 0))
                if answer.get("close"):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                data = answer.get("body", b"ok")
                try:
                    self.send_response(answer["status"])
                    if 300 <= answer["status"] < 400:  # never followed: it points at the metadata service
                        self.send_header("location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the dispatcher stopped reading (a capped body, its timeout)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.server.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls["cert"], tls["key"])
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True).start()
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self) -> list[dict]:
        with self._lock:
            return list(self.requests)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        """The requests once there are at least ``count`` (polling), or AssertionError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{self.url} got {len(self.received())} requests, not {count}, in {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
