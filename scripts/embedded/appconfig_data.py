"""AppConfig's data API on the emulator's endpoint, which moto lacks: the two calls Powertools'
AppConfigStore makes, so the functions read their feature flags offline with the same code.

- ``StartConfigurationSession`` (POST /configurationsessions) answers 201 with an initial token;
- ``GetLatestConfiguration`` (GET /configuration?configuration_token=...) answers the document, or
  an empty body when it has not changed since the token was issued, and the next token.

What is served: the latest hosted configuration version of the profile in moto's AppConfig
control plane (what ``ops.py flags push`` creates), else the repository's flags file, re-read when
it changes, so an edit is picked up without a restart. A push is served at once: the local
deployment strategy is AllAtOnce (moto has no environments or deployments; Terraform's gradual,
alarm-monitored deployment is AWS's).
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

PATHS = ("/configurationsessions", "/configuration")
POLL_INTERVAL_SECONDS = 15  # AppConfig's minimum


def wants(environ: dict) -> bool:
    return environ.get("PATH_INFO") in PATHS


class AppConfigData:
    def __init__(self, *, application: str, environment: str, profile: str, flags_file: Path,
                 hosted: Callable[[str, str], tuple[bytes, str] | None]):
        """``hosted(application, profile)`` -> (content, version label) of the latest hosted
        version in the control plane, or None."""
        self.application, self.environment, self.profile = application, environment, profile
        self.flags_file = flags_file
        self.hosted = hosted
        self._file: tuple[int, bytes] | None = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        try:
            if environ["PATH_INFO"] == "/configurationsessions" and environ["REQUEST_METHOD"] == "POST":
                status, headers, body = self._start(environ)
            elif environ["PATH_INFO"] == "/configuration" and environ["REQUEST_METHOD"] == "GET":
                status, headers, body = self._latest(environ)
            else:
                status, headers, body = _error(404, "ResourceNotFoundException", "no such AppConfig data API call")
        except _Refused as refused:
            status, headers, body = _error(refused.status, refused.code, refused.message)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    # --- the two calls ------------------------------------------------------------------------
    def _start(self, environ) -> tuple[str, list, bytes]:
        try:
            request = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
        except ValueError:
            raise _Refused(400, "BadRequestException", "the body is not JSON") from None
        wanted = (request.get("ApplicationIdentifier"), request.get("EnvironmentIdentifier"),
                  request.get("ConfigurationProfileIdentifier"))
        if wanted != (self.application, self.environment, self.profile):
            raise _Refused(404, "ResourceNotFoundException",
                           f"the local stack serves {self.application}/{self.environment}/{self.profile}, not "
                           f"{'/'.join(str(w) for w in wanted)}")
        token = _token({"seen": None})
        return "201 Created", [("Content-Type", "application/json")], json.dumps(
            {"InitialConfigurationToken": token}).encode()

    def _latest(self, environ) -> tuple[str, list, bytes]:
        token = (parse_qs(environ.get("QUERY_STRING", "")).get("configuration_token") or [""])[0]
        state = _untoken(token)
        content, label = self.document()
        version = hashlib.sha256(content).hexdigest()[:16]
        headers = [("Content-Type", "application/json"), ("Version-Label", label),
                   ("Next-Poll-Configuration-Token", _token({"seen": version})),
                   ("Next-Poll-Interval-In-Seconds", str(POLL_INTERVAL_SECONDS))]
        # An unchanged configuration is an empty body: the caller keeps what it has.
        return "200 OK", headers, b"" if state.get("seen") == version else content

    # --- what is served -----------------------------------------------------------------------
    def document(self) -> tuple[bytes, str]:
        pushed = self.hosted(self.application, self.profile)
        if pushed is not None:
            return pushed
        stat = self.flags_file.stat()
        with self._lock:
            if self._file is None or self._file[0] != stat.st_mtime_ns:
                self._file = (stat.st_mtime_ns, self.flags_file.read_bytes())
            return self._file[1], f"file:{self.flags_file.name}"


def moto_hosted(account: str, region: str) -> Callable[[str, str], tuple[bytes, str] | None]:
    """Reads the latest hosted configuration version from moto's AppConfig backend, by names."""
    def latest(application: str, profile: str) -> tuple[bytes, str] | None:
        from moto.appconfig.models import appconfig_backends

        backend = appconfig_backends[account][region]
        for app in backend.applications.values():
            if app.name != application:
                continue
            for config in app.config_profiles.values():
                if config.name == profile and config.config_versions:
                    number = max(config.config_versions)
                    version = config.config_versions[number]
                    content = version.content if isinstance(version.content, bytes) else str(version.content).encode()
                    return content, version.version_label or f"pushed:{number}"
        return None

    return latest


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> tuple[str, list, bytes]:
    reasons = {400: "Bad Request", 404: "Not Found"}
    return f"{status} {reasons.get(status, 'Error')}", [("Content-Type", "application/json"),
                                                        ("x-amzn-ErrorType", code)], json.dumps(
        {"Message": message}).encode()


def _token(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _untoken(token: str) -> dict:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
        return state if isinstance(state, dict) else {}
    except ValueError:
        raise _Refused(400, "BadRequestException", "the configuration token is not one this endpoint issued") \
            from None
