"""ops.py's commands for the assistant itself: end-user tokens, feature flags, shadow results,
outbound subscriptions and callbacks, and a local receiver that verifies what partners receive.

Each command takes ``where``, ops.py's Local (the stack `make run` started) or Cloud (a deployment,
named by its Terraform outputs): ``where.client(service)``, ``where.names`` (mangaassist_dev.naming)
and ``where.local``.
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS_FILE = ROOT / "config" / "flags.json"
FEATURES = ("chat", "recommend", "generate")


class OperatorError(Exception):
    """A failure the operator can act on (ops.py prints it as one line)."""


# --- tokens ----------------------------------------------------------------------------------
def mint_token(where, user: str, tier: str, minutes: int) -> str:
    """A token the local stack's authorizer accepts (signed with its dev key)."""
    if not where.local:
        raise OperatorError("tokens come from your identity provider on AWS (Cognito: InitiateAuth); "
                            "ops.py mints them for the local stack only (--local)")
    import jwt

    auth = where.info.get("jwt") or {}
    key_file = Path(auth.get("private_key_file", ""))
    if not key_file.is_file():
        raise OperatorError("the local stack has no dev signing key: restart `make run`")
    now = int(time.time())
    claims = {"iss": auth["issuer"], "aud": auth["audience"], "sub": user, "tier": tier, "iat": now,
              "exp": now + minutes * 60}
    return jwt.encode(claims, key_file.read_text(), algorithm="RS256", headers={"kid": auth["key_id"]})


# --- flags -----------------------------------------------------------------------------------
def flags_location(where) -> dict:
    appconfig = where.names.get("appconfig") or {}
    if not appconfig:
        raise OperatorError("no AppConfig names for this deployment (the stack or the Terraform outputs are older "
                            "than the flags): restart `make run` or apply the current terraform/")
    return appconfig


def read_flags(where) -> tuple[dict, str]:
    """The flags document the functions read now, and its version label (AppConfig's data API)."""
    location = flags_location(where)
    data = where.client("appconfigdata")
    token = data.start_configuration_session(
        ApplicationIdentifier=location["application"], EnvironmentIdentifier=location["environment"],
        ConfigurationProfileIdentifier=location["profile"])["InitialConfigurationToken"]
    answer = data.get_latest_configuration(ConfigurationToken=token)
    content = answer["Configuration"].read()
    try:
        return json.loads(content), answer.get("VersionLabel") or "-"
    except ValueError as exc:
        raise OperatorError(f"the deployed flags are not JSON: {exc}") from None


def validate_flags(document: dict) -> None:
    from aws_lambda_powertools.utilities.feature_flags.exceptions import SchemaValidationError
    from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

    try:
        SchemaValidator(document).validate()
    except SchemaValidationError as exc:
        raise OperatorError(f"not a feature-flags document: {exc}") from None


def push_flags(where, document: dict, description: str) -> dict:
    """A new hosted configuration version and (on AWS) its deployment with the environment's strategy."""
    validate_flags(document)
    location = flags_location(where)
    appconfig = where.client("appconfig")
    # The local stack names its ids (its emulator cannot list applications); on AWS they are looked up.
    app_id = location.get("application_id") or _by_name(appconfig.list_applications()["Items"],
                                                        location["application"], "application")
    profile_id = location.get("profile_id") or _by_name(
        appconfig.list_configuration_profiles(ApplicationId=app_id)["Items"], location["profile"],
        "configuration profile")
    version = appconfig.create_hosted_configuration_version(
        ApplicationId=app_id, ConfigurationProfileId=profile_id, Content=json.dumps(document).encode(),
        ContentType="application/json", Description=description[:1024])["VersionNumber"]
    result = {"application": location["application"], "profile": location["profile"], "version": version}
    if where.local:  # the local data API serves the newest version at once (AllAtOnce)
        return {**result, "deployment": "immediate (local)"}
    env_id = _by_name(appconfig.list_environments(ApplicationId=app_id)["Items"], location["environment"],
                      "environment")
    deployment = appconfig.start_deployment(
        ApplicationId=app_id, EnvironmentId=env_id, ConfigurationProfileId=profile_id,
        ConfigurationVersion=str(version), DeploymentStrategyId=location["deployment_strategy_id"],
        Description=description[:1024])
    return {**result, "deployment": deployment["DeploymentNumber"], "state": deployment["State"]}


def _by_name(items: list[dict], name: str, what: str) -> str:
    for item in items:
        if item.get("Name") == name:
            return item["Id"]
    raise OperatorError(f"no AppConfig {what} named {name!r}")


def switch_feature(document: dict, feature: str, enabled: bool) -> dict:
    """The document with ``<feature>_enabled`` forced on or off for everyone (its rules dropped)."""
    if feature not in FEATURES:
        raise OperatorError(f"unknown feature {feature!r}: {', '.join(FEATURES)}")
    return {**document, f"{feature}_enabled": {"default": enabled}}


def evaluate(document: dict, feature: str, user: str, tier: str, models: dict) -> dict:
    """What the flags decide for one user, with which rule decided each aspect."""
    from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
    from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider

    from mangaassist.flags.decisions import FlagBook

    class Fixed(StoreProvider):
        @property
        def get_raw_configuration(self):
            return document

        def get_configuration(self):
            return document

    if feature not in FEATURES:
        raise OperatorError(f"unknown feature {feature!r}: {', '.join(FEATURES)}")
    book = FlagBook(FeatureFlags(store=Fixed()), fast_id=models["fast"], fallback_id=models["fallback"],
                    candidate_id=models.get("candidate"))
    context = book.context(feature, tier=tier, subject=user, request_id="ops", user_id=user)
    decision = book.decide(feature, context)
    why = {}
    for aspect in ("enabled", "model", "max_tokens", "prompt_version", "daily_token_budget", "over_budget"):
        spec = document.get(f"{feature}_{aspect}") or {}
        matched = [name for name, rule in (spec.get("rules") or {}).items()
                   if all(_condition(c, context) for c in rule.get("conditions", []))]
        why[aspect] = f"rule: {matched[0]}" if matched else ("default" if spec else "code default")
    return {"feature": feature, "user": user, "tier": tier, "user_bucket": context["user_hash"] % 100,
            "enabled": decision.enabled, "model_id": decision.model_id, "model_rule": decision.model_rule,
            "prompt_version": decision.prompt_version, "max_tokens": decision.max_tokens,
            "daily_token_budget": decision.daily_token_budget, "over_budget": decision.over_budget, "why": why}


def _condition(condition: dict, context: dict) -> bool:
    value, wanted = context.get(condition.get("key")), condition.get("value")
    action = condition.get("action")
    if action == "EQUALS":
        return value == wanted
    if action == "MODULO_RANGE" and isinstance(value, int) and isinstance(wanted, dict):
        return wanted["START"] <= value % wanted["BASE"] <= wanted["END"]
    if action == "IN":
        return value in (wanted or [])
    return False


def budget_left(where, feature: str, budget: int) -> int | None:
    from mangaassist.dal.usage import UsageCounters

    if not budget:
        return None
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    used = UsageCounters(where.names["tables"]["usage"], where.client("dynamodb")).tokens(day, feature)
    return max(0, budget - used)


# --- shadow results ----------------------------------------------------------------------------
def shadow_summary(where, days: int) -> list[dict]:
    """ShadowCompared events from the analytics sink, per (primary, shadow) model pair."""
    s3, bucket = where.client("s3"), where.names["buckets"]["analytics"]
    pairs: dict[tuple[str, str], dict] = defaultdict(lambda: {"compared": 0, "similarity": 0.0, "latency_delta_ms": 0,
                                                              "cost_delta_usd": 0.0, "seen": set()})
    today = datetime.now(UTC).date()
    for back in range(days):
        day = (today - timedelta(days=back)).isoformat()
        prefix = f"events/date={day}/source=mangaassist.ai/detail_type=ShadowCompared/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                for line in body.splitlines():
                    event = json.loads(line)
                    detail = event["detail"]
                    pair = pairs[(detail["primary"]["model_id"], detail["shadow"]["model_id"])]
                    if event["id"] in pair["seen"]:  # the sink is at-least-once: count each event once
                        continue
                    pair["seen"].add(event["id"])
                    pair["compared"] += 1
                    pair["similarity"] += detail["similarity"]
                    pair["latency_delta_ms"] += detail["shadow"]["latency_ms"] - detail["primary"]["latency_ms"]
                    pair["cost_delta_usd"] += detail["shadow"]["cost_usd"] - detail["primary"]["cost_usd"]
    return [{"primary": primary, "shadow": shadow, "compared": p["compared"],
             "mean_similarity": round(p["similarity"] / p["compared"], 4),
             "mean_latency_delta_ms": round(p["latency_delta_ms"] / p["compared"], 1),
             "mean_cost_delta_usd": round(p["cost_delta_usd"] / p["compared"], 8)}
            for (primary, shadow), p in sorted(pairs.items())]


# --- subscriptions -----------------------------------------------------------------------------
def subscriptions(where):
    from mangaassist.notifications.subscriptions import Subscriptions

    table = where.client_resource("dynamodb").Table(where.names["tables"]["subscriptions"])
    return Subscriptions(table, where.client("secretsmanager"), secret_prefix=where.names["notification_secret_prefix"],
                         allow_loopback=where.local)


def summary(item: dict) -> dict:
    shown = {k: v for k, v in item.items() if k in ("subscription_id", "kind", "url", "event_pattern", "enabled",
                                                    "description", "created_at", "allowed_hosts", "template")}
    for key in ("event_pattern", "template"):
        if isinstance(shown.get(key), str):
            shown[key] = json.loads(shown[key])
    return shown


# --- the local receiver --------------------------------------------------------------------------
def listen(port: int, secrets: list[str], out=sys.stdout, ready=None) -> None:
    """Receive deliveries on 127.0.0.1:``port``, verify each with the official Standard Webhooks
    library and print it (like `stripe listen`), until interrupted. Answers 200 when the signature
    verifies, 401 when not."""
    import standardwebhooks

    verifiers = [standardwebhooks.Webhook(secret) for secret in secrets]

    class Receive(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = False
            for verifier in verifiers:
                try:
                    verifier.verify(body.decode("utf-8", "replace"), headers)
                    verified = True
                    break
                except standardwebhooks.WebhookVerificationError:
                    continue
            line = {"verified": verified, "webhook_id": headers.get("webhook-id"),
                    "timestamp": headers.get("webhook-timestamp"), "path": self.path}
            try:
                line["payload"] = json.loads(body)
            except ValueError:
                line["payload"] = body.decode("utf-8", "replace")
            print(json.dumps(line, ensure_ascii=False), file=out, flush=True)
            self.send_response(200 if verified else 401)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Receive)
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    finally:
        server.server_close()
