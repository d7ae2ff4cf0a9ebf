"""Subscriptions: who gets which platform events, where, shaped how, signed with what.

An item per subscription in the subscriptions table (``subscription_id``):

- ``sub_<hex>``: an operator's subscription: ``url``, ``event_pattern`` (EventBridge's syntax,
  checked by the platform's matcher with AWS's error messages), an optional ``template`` (an
  EventBridge input transformer: ``InputPathsMap`` + ``InputTemplate``; Slack wants
  ``{"text": ...}``), ``enabled``;
- ``callback:<client_id>``: an API key's callbacks for /v1/generate jobs: the hosts its
  callback_url may name (``allowed_hosts``), ``enabled``.

Each item's signing secrets are a Secrets Manager secret ``<NOTIFY_SECRET_PREFIX><id>`` holding
``{"secrets": [{"value": "whsec_...", "expires_at": null | epoch}]}``: every secret not expired
signs, so a rotation keeps the old secret valid until it expires (24 hours by default).

Everything a subscription needs is checked when it is saved (pattern, URL, template, secret), so a
bad one is refused with a one-line reason then, not discovered at delivery.
"""
from __future__ import annotations

import json
import re
import secrets as random_secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from mangaassist.events.patterns import InvalidEventPattern, compile_pattern
from mangaassist.events.transform import transform
from mangaassist.notifications import egress, signing

ROTATION_OVERLAP_SECONDS = 24 * 3600
CACHE_SECONDS = 30  # a container rereads the subscriptions (and their secrets) at most this often
TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class SubscriptionRefused(ValueError):
    """A subscription that cannot be saved, and why (one line)."""


class UnknownSubscription(LookupError):
    pass


def callback_id(client_id: str) -> str:
    return f"callback:{client_id}"


def validate_template(template) -> dict:
    """An input transformer EventBridge would take, whose output is JSON; SubscriptionRefused otherwise."""
    if not isinstance(template, dict) or not isinstance(template.get("InputTemplate"), str):
        raise SubscriptionRefused('a template is {"InputPathsMap": {...}, "InputTemplate": "..."}')
    paths = template.get("InputPathsMap", {})
    if not isinstance(paths, dict) or len(paths) > 100:
        raise SubscriptionRefused("InputPathsMap maps at most 100 names to JSON paths")
    probe: dict = {}
    for name, path in paths.items():
        if not TEMPLATE_NAME.fullmatch(str(name)) or name.startswith("aws."):
            raise SubscriptionRefused(f"InputPathsMap name {name!r} must be [A-Za-z0-9_-] and not start with aws.")
        if not isinstance(path, str) or not re.fullmatch(r"\$(\.[^.\[\]]+|\[\d+\])*", path):
            raise SubscriptionRefused(f"InputPathsMap path {path!r} for {name} must be a JSON path like $.detail.id")
        _place(probe, path, f"probe-{name}")
    try:
        rendered = transform(probe, template, rule_arn="arn:aws:events:probe", rule_name="probe",
                             ingestion_time="2026-01-01T00:00:00Z")
        json.loads(rendered)
    except (ValueError, KeyError) as exc:
        raise SubscriptionRefused(f"the template does not render JSON: {exc}") from exc
    return {"InputPathsMap": paths, "InputTemplate": template["InputTemplate"]}


def _place(document: dict, path: str, value: str) -> None:
    parts = re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path)
    target: dict = document
    for i, (key, _index) in enumerate(parts):
        if i == len(parts) - 1:
            target[key or "0"] = value
        else:
            target = target.setdefault(key or "0", {})


class Subscriptions:
    def __init__(self, table, secrets_client, *, secret_prefix: str, allow_loopback: bool,
                 clock: Callable[[], float] = time.time, cache_seconds: float = CACHE_SECONDS):
        self.table = table  # a boto3 DynamoDB Table
        self.secrets_client = secrets_client
        self.secret_prefix = secret_prefix
        self.allow_loopback = allow_loopback
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: tuple[float, list[dict]] | None = None
        self._secrets: dict[str, tuple[float, list[str]]] = {}
        self._patterns: dict[str, Callable[[dict], bool]] = {}
        self._lock = threading.Lock()

    # --- operators ---------------------------------------------------------------------------
    def add(self, url: str, event_pattern, template=None, description: str = "",
            secret: str | None = None, enabled: bool = True) -> tuple[dict, str]:
        """A new subscription (enabled unless told) and its first secret (given, or made here; shown once)."""
        if secret is not None:
            try:
                signing.secret_key(secret)
            except ValueError as exc:
                raise SubscriptionRefused(f"secret: {exc}") from exc
        pattern_text = event_pattern if isinstance(event_pattern, str) else json.dumps(event_pattern)
        try:
            compile_pattern(pattern_text)
        except InvalidEventPattern as exc:
            raise SubscriptionRefused(f"event pattern: {exc}") from exc
        self.check_url(url)
        subscription_id = "sub_" + random_secrets.token_hex(10)
        item: dict = {"subscription_id": subscription_id, "kind": "subscription", "url": url,
                "event_pattern": pattern_text, "enabled": enabled, "created_at": _iso(self.clock()),
                "description": description[:500]}
        if template is not None:
            item["template"] = json.dumps(validate_template(template))
        secret = secret or signing.new_secret()
        self._write_secrets(subscription_id, [{"value": secret, "expires_at": None}], create=True)
        self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(subscription_id)")
        return item, secret

    def set_callbacks(self, client_id: str, allowed_hosts: list[str]) -> tuple[dict, str]:
        """An API key's callback configuration and a new secret (shown once; earlier ones keep
        working until they expire, as a rotation)."""
        hosts = sorted({h.strip().lower() for h in allowed_hosts if h.strip()})
        if not hosts or any(not re.fullmatch(r"[a-z0-9.-]{1,253}", h) for h in hosts):
            raise SubscriptionRefused("allowed hosts are DNS names, at least one")
        subscription_id = callback_id(client_id)
        item = {"subscription_id": subscription_id, "kind": "callback", "allowed_hosts": hosts,
                "enabled": True, "created_at": _iso(self.clock())}
        existing = self.table.get_item(Key={"subscription_id": subscription_id}).get("Item")
        self.table.put_item(Item=item)
        if existing is None:
            secret = signing.new_secret()
            self._write_secrets(subscription_id, [{"value": secret, "expires_at": None}], create=True)
        else:
            secret = self.rotate(subscription_id)
        return item, secret

    def check_url(self, url: str) -> None:
        try:
            scheme, host, port, _ = egress.check_url(url, allow_loopback=self.allow_loopback)
            egress.safe_addresses(host, port, allow_loopback=self.allow_loopback)
        except egress.EgressRefused as exc:
            raise SubscriptionRefused(f"url: {exc}") from exc

    def every(self) -> list[dict]:
        items: list[dict] = []
        request: dict = {}
        while True:
            page = self.table.scan(**request)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda i: i["subscription_id"])
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, subscription_id: str) -> dict:
        item = self.table.get_item(Key={"subscription_id": subscription_id}).get("Item")
        if item is None:
            raise UnknownSubscription(subscription_id)
        return item

    def set_enabled(self, subscription_id: str, enabled: bool) -> None:
        from botocore.exceptions import ClientError

        try:
            self.table.update_item(Key={"subscription_id": subscription_id}, UpdateExpression="SET enabled = :e",
                                   ConditionExpression="attribute_exists(subscription_id)",
                                   ExpressionAttributeValues={":e": enabled})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise UnknownSubscription(subscription_id) from exc
            raise
        self._cache = None

    def remove(self, subscription_id: str) -> None:
        self.get(subscription_id)
        self.table.delete_item(Key={"subscription_id": subscription_id})
        self.secrets_client.delete_secret(SecretId=self.secret_prefix + subscription_id,
                                          ForceDeleteWithoutRecovery=True)
        self._cache = None

    def rotate(self, subscription_id: str, *, expire_old_in: float = ROTATION_OVERLAP_SECONDS) -> str:
        """A new secret; the current ones stay valid for ``expire_old_in`` seconds (0: at once)."""
        self.get(subscription_id)
        now = self.clock()
        kept = [s for s in self._read_secrets(subscription_id) if s.get("expires_at") is None
                or s["expires_at"] > now]
        for entry in kept:
            if entry.get("expires_at") is None or entry["expires_at"] > now + expire_old_in:
                entry["expires_at"] = int(now + expire_old_in)
        secret = signing.new_secret()
        self._write_secrets(subscription_id, [{"value": secret, "expires_at": None}] +
                            [s for s in kept if s["expires_at"] > now])
        return secret

    # --- the dispatcher ----------------------------------------------------------------------
    def enabled(self) -> list[dict]:
        now = self.clock()
        with self._lock:
            if self._cache and now - self._cache[0] < self.cache_seconds:
                return self._cache[1]
        items = [i for i in self.every() if i.get("enabled")]
        with self._lock:
            self._cache = (now, items)
        return items

    def matching(self, event: dict) -> list[dict]:
        found = []
        for item in self.enabled():
            if item.get("kind") != "subscription":
                continue
            matcher = self._patterns.get(item["event_pattern"])
            if matcher is None:
                matcher = self._patterns[item["event_pattern"]] = compile_pattern(item["event_pattern"])
            if matcher(event):
                found.append(item)
        return found

    def active_secrets(self, subscription_id: str) -> list[str]:
        now = self.clock()
        cached = self._secrets.get(subscription_id)
        if cached is None or now - cached[0] >= self.cache_seconds:
            cached = (now, [s["value"] for s in self._read_secrets(subscription_id)
                            if s.get("expires_at") is None or s["expires_at"] > now])
            self._secrets[subscription_id] = cached
        return cached[1]

    # --- secrets -----------------------------------------------------------------------------
    def _read_secrets(self, subscription_id: str) -> list[dict]:
        value = self.secrets_client.get_secret_value(SecretId=self.secret_prefix + subscription_id)["SecretString"]
        return list(json.loads(value)["secrets"])

    def _write_secrets(self, subscription_id: str, entries: list[dict], *, create: bool = False) -> None:
        for entry in entries:
            signing.secret_key(entry["value"])  # never store a secret the signer would refuse
        document = json.dumps({"secrets": entries})
        name = self.secret_prefix + subscription_id
        if create:
            self.secrets_client.create_secret(Name=name, SecretString=document,
                                              Description="Standard Webhooks signing secrets of a subscription")
        else:
            self.secrets_client.put_secret_value(SecretId=name, SecretString=document)
        self._secrets.pop(subscription_id, None)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
