"""The dev API keys and partner secrets, kept in the data folder so a restart keeps them.

Two API keys, ``dev`` and ``dev-2`` (ids as API Gateway's ``apiKeyId``): each is a client with
its own usage plan counters and its own jobs, so a second client is one header away.

``dev-credentials.json`` is the developer's to edit (to paste a partner's real test secret, say).
Whatever is in it that cannot be used is replaced, and said so: a file that is not JSON is moved
aside (``.damaged``), a source without a usable secret (an empty list, a non-string, another
scheme) gets a new one. The stack never starts with a secret it cannot sign or verify with.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path


def new_secret(scheme: str) -> str:
    if scheme == "standard-webhooks":
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    if scheme == "stripe":
        return "whsec_" + secrets.token_hex(16)
    return secrets.token_hex(20)


def _usable(source, scheme: str) -> bool:
    return (isinstance(source, dict) and source.get("scheme") == scheme and isinstance(source.get("secrets"), list)
            and bool(source["secrets"]) and all(isinstance(s, str) and s.strip() for s in source["secrets"]))


def load(path: Path, sources: dict) -> tuple[dict, list[str]]:
    """(credentials, notes): ``sources`` is wiring.json's; notes say what was replaced and why."""
    notes: list[str] = []
    known: dict = {}
    if path.exists():
        try:
            known = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(known, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            os.replace(path, path.with_suffix(".damaged"))
            notes.append(f"{path.name}: unreadable ({exc}); moved to {path.with_suffix('.damaged').name}, "
                         "new dev API key and partner secrets")
            known = {}
    api_key = known.get("api_key")
    if not (isinstance(api_key, str) and api_key.strip()):
        if "api_key" in known:
            notes.append(f"{path.name}: the API key was empty; made a new one")
        api_key = secrets.token_urlsafe(24)
    second = known.get("api_key_2")
    if not (isinstance(second, str) and second.strip()) or second == api_key:
        if "api_key_2" in known:
            notes.append(f"{path.name}: the second API key was empty or the first one; made a new one")
        second = secrets.token_urlsafe(24)
    credentials = {"api_key": api_key, "api_key_2": second, "sources": {}}
    kept = known.get("sources") if isinstance(known.get("sources"), dict) else {}
    for name, spec in sources.items():
        source = kept.get(name)
        if not _usable(source, spec["scheme"]):
            if source is not None:
                notes.append(f"{path.name}: source {name!r} had no usable {spec['scheme']} secret; made a new one")
            source = {"scheme": spec["scheme"], "secrets": [new_secret(spec["scheme"])]}
        credentials["sources"][name] = source
    if credentials != known:
        path.write_text(json.dumps(credentials, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return credentials, notes
