#!/usr/bin/env python3
"""Operator CLI: send signed webhooks, replay the archive, redrive dead letters, test patterns, cost,
and the assistant's own controls: end-user tokens, feature flags (the kill switch), shadow results,
outbound subscriptions and callbacks, a local receiver that verifies deliveries.

Every command works against AWS (default credentials; every resource name from Terraform's
outputs: `terraform -chdir=terraform output -json`, or --outputs FILE) and against the local
stack (--local, reading its stack.json), prints a human summary, and prints JSON instead with
--json. Errors are one line on stderr and exit status 1 (2 for a bad argument).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from mangaassist_dev.delivery import DeadLetter
from mangaassist_dev.product_ops import FEATURES
from mangaassist_dev.routing import load_wiring

from mangaassist.events.patterns import InvalidEventPattern, compile_pattern

ROOT = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.5
TIERS = ("free", "premium")


class OpsError(Exception):
    """A failure the operator can act on: printed as one line, exit status 1."""


class BadInput(OpsError):
    """What the operator gave cannot be used (a bad file, URL, pattern...): one line, exit status 2."""


def http_json(method: str, url: str, body=None, headers: dict | None = None,
              timeout: float = 30) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, head = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, head = exc.code, exc.read(), dict(exc.headers)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OpsError(f"cannot reach {url}: {reason}") from exc
    try:
        return status, json.loads(raw or b"{}"), head
    except ValueError:
        return status, {"raw": raw.decode("utf-8", "replace")}, head


# --- argument values ---------------------------------------------------------------------------
_RELATIVE = re.compile(r"-(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def moment(text: str) -> float:
    """A point in time: ISO 8601 (UTC unless it says otherwise), epoch seconds, ``now``, or
    relative to now: ``-90s``, ``-30m``, ``-1h``, ``-2d``, ``-1w``."""
    text = text.strip()
    if text == "now":
        return time.time()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return time.time() - float(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: use ISO 8601 (2026-11-25T09:00:00Z), "
                                         "epoch seconds, now, or -30m/-1h/-2d") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def days(text: str) -> int:
    if not (text.isdigit() and 1 <= int(text) <= 366):
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of days from 1 to 366")
    return int(text)


def positive(text: str) -> int:
    if not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return int(text)


def port_number(text: str) -> int:
    if not (text.isdigit() and 0 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r}: give a port from 0 (any free one) to 65535")
    return int(text)


def file_path(text: str) -> Path:
    """A file, given as a path or, as the AWS CLI takes it, file://path."""
    return Path(text.removeprefix("file://"))


def inline_or_file(text: str) -> str:
    """A JSON argument, inline or as file://path (as `aws events test-event-pattern` takes it)."""
    if text.startswith("file://"):
        path = file_path(text)
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
    return text


# --- where the platform runs -------------------------------------------------------------------
def default_stack_file() -> Path:
    """The stack `make run` started: it writes stack.json in its data folder (MANGAASSIST_DATA)."""
    return Path(os.environ.get("MANGAASSIST_DATA") or ROOT / ".local") / "stack.json"


class Local:
    """The stack `make run` started, described by its stack.json."""

    local = True

    def __init__(self, stack_file: Path):
        if not stack_file.exists():
            raise OpsError(f"{stack_file} not found: start the local stack with `make run` first")
        try:
            self.info = json.loads(stack_file.read_text())
            self.names = self.info["names"]
        except (ValueError, KeyError) as exc:
            raise OpsError(f"{stack_file} is not a stack description ({exc}); restart `make run`") from None
        import boto3

        self.aws = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                         region_name=self.info["region"])
        self.endpoint = self.info["aws_endpoint_url"]

    def client(self, service: str):
        return self.aws.client(service, endpoint_url=self.endpoint)

    def client_resource(self, service: str):
        return self.aws.resource(service, endpoint_url=self.endpoint)

    def models(self) -> dict:
        """The model ids the flags' roles stand for (fast, fallback, candidate)."""
        if self.info.get("models"):
            return self.info["models"]
        from embedded.stack import LOCAL_CANDIDATE_MODEL, LOCAL_FALLBACK_MODEL, LOCAL_FAST_MODEL

        return {"fast": LOCAL_FAST_MODEL, "fallback": LOCAL_FALLBACK_MODEL, "candidate": LOCAL_CANDIDATE_MODEL}

    def control(self, method: str, path: str, body=None) -> tuple[int, dict]:
        """A /_local control, with the stack's dev token."""
        status, answer, _ = http_json(method, f"{self.info['base_url']}{path}", body,
                                      {"x-local-token": self.info.get("local_token", "")})
        return status, answer

    def source(self, name: str) -> tuple[str, str, list[str]]:
        source = self.info["sources"].get(name)
        if not source:
            raise OpsError(f"unknown source {name!r}; sources: {', '.join(self.info['sources'])}")
        return source["url"], source["scheme"], source["secrets"]

    def redeliver(self, letter: DeadLetter) -> None:
        status, body = self.control("POST", "/_local/redeliver", {
            "event": letter.event, "rule_arn": letter.rule_arn, "target_arn": letter.target_arn})
        if status != 200 or body.get("status") != "delivered":
            raise OpsError(body.get("error") or body.get("message") or f"HTTP {status}")

    def replay(self, start: float, end: float, rules: list[str] | None, name: str, dry_run: bool, archive: str,
               wait: bool, quiet: bool) -> dict:
        status, body = self.control("POST", "/_local/replays", {
            "archive": archive, "name": name, "start": start, "end": end, "rules": rules, "dry_run": dry_run})
        if status != 200:
            raise OpsError(body.get("message", f"HTTP {status}"))
        if dry_run or not wait:
            return body
        shown = None
        while True:  # progress until every delivery of the replay finished
            status, state = self.control("GET", f"/_local/replays/{name}")
            if status != 200:
                raise OpsError(state.get("message", f"HTTP {status}"))
            line = replay_progress(state)
            if line != shown and not quiet:
                print(f"  {line}", file=sys.stderr, flush=True)
                shown = line
            if state["state"] == "COMPLETED":
                return {**body, **state}
            time.sleep(POLL_SECONDS)

    def deliveries(self) -> dict:
        status, body = self.control("GET", "/_local/deliveries")
        if status != 200:
            raise OpsError(body.get("message", f"HTTP {status}"))
        return body


def replay_progress(state: dict) -> str:
    failed = f", {state['dead_lettered']} dead-lettered" if state.get("dead_lettered") else ""
    return f"replay {state['replay_name']}: {state['finished']}/{state['deliveries']} delivered{failed}"


def terraform_outputs(path: str | None) -> dict:
    """`terraform output -json` of the deployment (or a file holding it), values unwrapped."""
    if path:
        try:
            raw = file_path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise OpsError(f"cannot read {path}: {exc.strerror}") from None
    else:
        try:
            done = subprocess.run(["terraform", f"-chdir={ROOT / 'terraform'}", "output", "-json"],
                                  capture_output=True, text=True, timeout=120)
        except FileNotFoundError:
            raise OpsError("terraform is not on the PATH: pass --outputs FILE (from `terraform output -json`), "
                           "or --local") from None
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise OpsError(f"terraform output failed ({first}); pass --outputs FILE, or --local")
        raw = done.stdout
    try:
        outputs = json.loads(raw)
    except ValueError as exc:
        raise OpsError(f"the Terraform outputs are not JSON: {exc}") from None
    values = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in outputs.items()}
    if not isinstance(values.get("names"), dict):
        raise OpsError("the Terraform outputs have no `names` output: apply the current terraform/ first "
                       "(or use --local)")
    return values


class Cloud:
    """A `terraform apply`-ed deployment: every name from its Terraform outputs."""

    local = False

    def __init__(self, outputs_file: str | None, region: str | None):
        import boto3

        self.outputs = terraform_outputs(outputs_file)
        self.names = self.outputs["names"]
        # Where the flags live: the `flags` output (application, environment, profile, deployment strategy);
        # `names.appconfig` has no environment (it is the deployment's, not derived from the prefix).
        flags = self.outputs.get("flags") if isinstance(self.outputs.get("flags"), dict) else {}
        if flags or self.names.get("appconfig"):
            self.names["appconfig"] = {**(self.names.get("appconfig") or {}), **flags}
        self.aws = boto3.session.Session(region_name=region)
        self.info = {"names": self.names, "bus": self.names["bus"], "archive": self.names["archive"]}

    def client(self, service: str):
        return self.aws.client(service)

    def client_resource(self, service: str):
        return self.aws.resource(service)

    def models(self) -> dict:
        """The model ids the flags' roles stand for, as Terraform gave them to the chat function."""
        function = self.names.get("functions", {}).get("chat")
        if not function:
            raise OpsError("the Terraform outputs name no chat function")
        env = self.client("lambda").get_function_configuration(FunctionName=function).get("Environment", {})
        variables = env.get("Variables", {})
        return {"fast": variables.get("MODEL_FAST_ID", ""), "fallback": variables.get("MODEL_FALLBACK_ID", ""),
                "candidate": variables.get("MODEL_CANDIDATE_ID") or None}

    def source(self, name: str) -> tuple[str, str, list[str]]:
        wiring = load_wiring()
        if name not in wiring.sources:
            raise OpsError(f"unknown source {name!r}; sources: {', '.join(wiring.sources)}")
        url = (self.outputs.get("webhook_urls") or {}).get(name)
        if not url:
            raise OpsError(f"the Terraform outputs have no webhook_urls[{name!r}]")
        secret = self.client("secretsmanager").get_secret_value(SecretId=self.names["webhook_secrets"][name])
        return url, wiring.sources[name]["scheme"], json.loads(secret["SecretString"])["secrets"]

    def redeliver(self, letter: DeadLetter) -> None:
        target_arn, event = letter.target_arn, letter.event
        if ":sqs:" in target_arn:
            sqs = self.client("sqs")
            url = sqs.get_queue_url(QueueName=target_arn.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
            return
        result = self.client("lambda").invoke(FunctionName=target_arn, Payload=json.dumps(event).encode())
        if result.get("FunctionError"):
            raise OpsError(f"{target_arn} failed: {result['Payload'].read().decode()[:500]}")

    def replay(self, start: float, end: float, rules: list[str] | None, name: str, dry_run: bool, archive: str,
               wait: bool, quiet: bool) -> dict:
        events = self.client("events")
        if dry_run:
            described = events.describe_archive(ArchiveName=archive)
            return {"dry_run": True, "events": described.get("EventCount"), "rules": {},
                    "note": "AWS does not expose archived events; EventCount is the whole archive"}
        bus_arn = events.describe_event_bus(Name=self.names["bus"])["Arn"]
        destination = {"Arn": bus_arn}
        if rules:
            destination["FilterArns"] = [
                events.describe_rule(Name=self.names["rules"][r], EventBusName=self.names["bus"])["Arn"] for r in rules]
        archive_arn = events.describe_archive(ArchiveName=archive)["ArchiveArn"]
        events.start_replay(ReplayName=name, EventSourceArn=archive_arn, Destination=destination,
                            EventStartTime=datetime.fromtimestamp(start, UTC),
                            EventEndTime=datetime.fromtimestamp(end, UTC))
        while wait:  # progress until the replay settles
            state = events.describe_replay(ReplayName=name)
            last = state.get("EventLastReplayedTime")
            if not quiet:
                print(f"  {state['State']:<10} replayed up to {last or '-'}", file=sys.stderr, flush=True)
            if state["State"] in ("COMPLETED", "FAILED", "CANCELLED"):
                return {"replay_name": name, "state": state["State"], "reason": state.get("StateReason")}
            time.sleep(5)
        return {"replay_name": name, "state": "STARTING"}


def platform(args):
    if args.local:
        return Local(Path(args.stack) if args.stack else default_stack_file())
    return Cloud(args.outputs, args.region)


def emit(args, result: dict, human: str) -> None:
    print(json.dumps(result, indent=2, default=str) if args.json else human)


def progress(args):
    """Where per-item progress goes: stderr, unless --json keeps the terminal quiet."""
    return None if args.json else (lambda line: print(f"  {line}", file=sys.stderr, flush=True))


# --- commands ----------------------------------------------------------------------------------
def webhook(scheme: str, spec: dict, secrets: list[str], body: bytes, new_id: bool) -> tuple[bytes, dict]:
    """The body and headers a partner sends. The delivery id (wiring.json's ``delivery_id``) is
    derived from the body, so sending the same file again is the partner's retry; ``new_id``
    mints a fresh one: a new delivery of the same content."""
    from mangaassist_dev import signing

    stable = hashlib.sha256(body).hexdigest()
    kind, _, where = spec.get("delivery_id", "signed").partition(":")
    if kind == "payload" and new_id:
        payload = json.loads(body)
        *parents, leaf = where.split(".")
        holder = payload
        for key in parents:
            holder = holder[key]
        prefix = str(holder.get(leaf, "")).split("_", 1)[0] + "_" if "_" in str(holder.get(leaf, "")) else ""
        holder[leaf] = f"{prefix}{uuid.uuid4().hex}"
        body = json.dumps(payload, ensure_ascii=False).encode()
    delivery = uuid.uuid4().hex if new_id else stable[:32]
    headers = {"content-type": "application/json"}
    if scheme == "stripe":
        headers.update(signing.sign_stripe(secrets, body))
    elif scheme == "github":
        headers.update(signing.sign_github(secrets, body), **{"X-GitHub-Event": "push",
                                                              "X-GitHub-Delivery": str(uuid.UUID(delivery))})
    elif scheme == "standard-webhooks":
        headers.update(signing.sign_standard(secrets, body, msg_id=f"msg_{delivery}"))
    else:
        raise OpsError(f"unknown signature scheme {scheme!r}")
    return body, headers


def cmd_send(args) -> int:
    where = platform(args)
    url, scheme, secrets = where.source(args.source)
    scheme = args.scheme or scheme
    try:
        body = args.file.read_bytes()
    except OSError as exc:
        raise OpsError(f"cannot read {args.file}: {exc.strerror}") from None
    if args.new_id:
        try:
            json.loads(body)
        except ValueError as exc:
            raise OpsError(f"--new-id rewrites the payload's id: {args.file} is not JSON ({exc})") from None
    body, headers = webhook(scheme, load_wiring().sources.get(args.source, {}), secrets, body, args.new_id)
    status, answer, _ = http_json("POST", args.url or url, body, headers)
    emit(args, {"status": status, "response": answer}, f"{args.source}: HTTP {status} {json.dumps(answer)}")
    return 0 if status < 400 else 1


def cmd_replay(args) -> int:
    where = platform(args)
    if args.end < args.start:
        raise OpsError("--to is before --from")
    name = args.name or f"replay-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    result = where.replay(args.start, args.end, args.rule or None, name, args.dry_run,
                          args.archive or where.info["archive"], wait=not args.no_wait, quiet=args.json)
    span = (f"{datetime.fromtimestamp(args.start, UTC):%Y-%m-%d %H:%M:%S} to "
            f"{datetime.fromtimestamp(args.end, UTC):%Y-%m-%d %H:%M:%S} UTC")
    lines = [f"{'dry run: ' if args.dry_run else ''}{result.get('events')} archived events from {span}"]
    lines += [f"  {rule:<28} {count} event(s)" for rule, count in result.get("rules", {}).items()]
    if not args.dry_run:
        lines.append(replay_progress(result) if "deliveries" in result
                     else f"replay {result.get('replay_name')} {result.get('state', 'started')}")
    emit(args, result, "\n".join(lines))
    return 0 if result.get("state") not in ("FAILED", "CANCELLED") else 1


def chosen_dlqs(args, names: dict) -> list[tuple[str, str]]:
    """(rule/target key, DLQ name) for --dlq, --rule with --target, or --all."""
    dlqs = names["target_dlqs"]
    if args.all:
        return list(dlqs.items())
    if args.dlq:
        found = [(key, name) for key, name in dlqs.items() if name == args.dlq]
        if not found:
            raise OpsError(f"no target DLQ named {args.dlq!r}; DLQs: {', '.join(dlqs.values())}")
        return found
    if not (args.rule and args.target):
        raise OpsError("say which DLQ: --dlq NAME, --rule R --target T, or --all")
    try:
        targets = load_wiring().rule(args.rule).targets
    except KeyError as exc:
        raise OpsError(exc.args[0]) from None
    keys = [f"{args.rule}/{t.id}" for t in targets if args.target in (t.id, t.resource)]
    if not keys:
        raise OpsError(f"rule {args.rule!r} has no target {args.target!r}; targets: {', '.join(t.id for t in targets)}")
    return [(key, dlqs[key]) for key in keys]


def cmd_redrive(args) -> int:
    from mangaassist_dev.redrive import redrive_queue

    where = platform(args)
    sqs = where.client("sqs")
    results, lines = [], []
    for key, name in chosen_dlqs(args, where.names):
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            raise OpsError(f"no queue named {name!r}") from None
        result = redrive_queue(sqs, url, name, where.redeliver, max_messages=args.max, dry_run=args.dry_run,
                               progress=progress(args)).as_dict()
        results.append({"key": key, **result})
        verb = f"would redrive {result['would_redrive']}" if args.dry_run else f"redrove {result['redriven']}"
        lines.append(f"{name}: {verb}, failed {len(result['failed'])}, {result['left_visible']} left visible")
        reasons: dict[str, int] = {}
        for failure in result["failed"]:
            reasons[failure["error"]] = reasons.get(failure["error"], 0) + 1
        lines += [f"  {count} failed: {reason}" for reason, count in reasons.items()]
    summary = results[0] if len(results) == 1 else {"dlqs": results}
    emit(args, summary, "\n".join(lines))
    return 1 if any(r["failed"] for r in results) else 0


def cmd_test_event_pattern(args) -> int:
    try:
        matcher = compile_pattern(args.event_pattern)
        event = json.loads(args.event)
    except InvalidEventPattern as exc:
        emit(args, {"error": "InvalidEventPatternException", "message": str(exc)},
             f"InvalidEventPatternException: {exc}")
        return 2
    except ValueError as exc:
        emit(args, {"error": "InvalidEvent", "message": str(exc)}, f"event is not JSON: {exc}")
        return 2
    result = matcher(event) if isinstance(event, dict) else False
    emit(args, {"Result": result}, "true" if result else "false")
    return 0


def cmd_status(args) -> int:
    where = platform(args)
    wiring = load_wiring()
    dlqs = where.names["target_dlqs"]
    rows = {f"{r.name}/{t.id}": {"rule": r.name, "target": t.resource, "dlq": dlqs[f"{r.name}/{t.id}"],
                                 "delivered": 0, "failed": 0, "in_dlq": 0}
            for r in wiring.rules for t in r.targets}
    sqs = where.client("sqs")
    if args.local:
        data = where.deliveries()
        by_target = {(r["rule"], r["target"]): k for k, r in rows.items()}
        for d in data["deliveries"]:
            key = by_target.get((d["rule"], d["target"]))
            if key and d["status"] == "delivered":
                rows[key]["delivered"] += 1
            elif key and d["status"] == "dead_lettered":
                rows[key]["failed"] += 1
        archive = data.get("archive", {})
    else:
        described = where.client("events").describe_archive(ArchiveName=where.info["archive"])
        archive = {"events": described.get("EventCount"), "size_bytes": described.get("SizeBytes")}
    for row in rows.values():
        try:
            url = sqs.get_queue_url(QueueName=row["dlq"])["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            row["in_dlq"] = None
            continue
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        row["in_dlq"] = int(attrs["ApproximateNumberOfMessages"])
    result = {"targets": list(rows.values()), "archive": archive}
    width = max(len(r["dlq"]) for r in rows.values())
    lines = [f"{'rule':<22}{'target':<20}{'delivered':>10}{'failed':>8}{'in DLQ':>8}  {'DLQ':<{width}}"]
    lines += [f"{r['rule']:<22}{r['target']:<20}{r['delivered']:>10}{r['failed']:>8}"
              f"{'-' if r['in_dlq'] is None else r['in_dlq']:>8}  {r['dlq']}" for r in rows.values()]
    lines.append(f"archive: {archive.get('events')} events, {archive.get('size_bytes')} bytes")
    if not args.local:
        lines.append("(delivered/failed counts on AWS are in CloudWatch: AWS/Events Invocations, FailedInvocations)")
    emit(args, result, "\n".join(lines))
    return 0


def cmd_env(args) -> int:
    """Shell variables for the deployment: eval "$(ops.py env --local)"."""
    where = platform(args)
    if args.local:
        values = {"MANGAASSIST_URL": where.info["base_url"], "MANGAASSIST_API_KEY": where.info["api_key"],
                  "MANGAASSIST_LOCAL_TOKEN": where.info.get("local_token", "")}
    else:
        values = {"MANGAASSIST_URL": str(where.outputs.get("api_url") or "").rstrip("/")}
        if where.outputs.get("api_key_id"):
            values["MANGAASSIST_API_KEY"] = where.client("apigateway").get_api_key(
                apiKey=where.outputs["api_key_id"], includeValue=True)["value"]
    import shlex

    emit(args, values, "\n".join(f"export {name}={shlex.quote(value)}" for name, value in values.items()))
    return 0


def cmd_cost(args) -> int:
    from datetime import timedelta

    from mangaassist_dev.cost_model import format_projection, project_model_cost

    from mangaassist.models.pricing import PRICES_AS_OF
    from mangaassist.workers.usage import daily_usage, projected_cost_per_million

    where = platform(args)
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=n)).isoformat() for n in range(args.days)]
    usage = daily_usage(days, client=where.client("dynamodb"), table=where.info["names"]["tables"]["usage"])
    projected = projected_cost_per_million(usage)
    rows = [{"day": day, "model_id": model, **{k: json_number(v) for k, v in counters.items()}}
            for day, models in sorted(usage.items()) for model, counters in sorted(models.items())]
    # The model part of docs/capacity-and-cost.md, from the measured tokens and model mix.
    totals: dict[str, dict[str, float]] = {}
    for models in usage.values():
        for model, counters in models.items():
            for name, value in counters.items():
                totals.setdefault(model, {}).setdefault(name, 0.0)
                totals[model][name] += float(value)
    model_part = project_model_cost(totals, messages_per_day=args.messages_per_day)
    result = {"days": args.days, "rows": rows,
              "projected_cost_per_million_messages_usd": None if projected is None else json_number(projected),
              "prices_as_of": PRICES_AS_OF, "model_cost_at_volume": asdict(model_part) if model_part else None}
    lines = [f"{'day':<12}{'model':<46}{'calls':>8}{'in tokens':>12}{'out tokens':>12}{'cost USD':>12}"]
    lines += [f"{r['day']:<12}{r['model_id']:<46}{r.get('calls', 0):>8}{r.get('input_tokens', 0):>12}"
              f"{r.get('output_tokens', 0):>12}{float(r.get('cost_usd', 0)):>12.6f}" for r in rows]
    lines.append(f"projected cost per 1M messages: {'no model calls yet' if projected is None else f'${projected}'}"
                 f" (prices as of {PRICES_AS_OF})")
    if model_part:
        lines += ["", "model part at this mix and these tokens (docs/capacity-and-cost.md):",
                  format_projection(model_part)]
    emit(args, result, "\n".join(lines))
    return 0


def json_number(value):
    """A DynamoDB number (Decimal) as JSON has it: an int when whole, else a float."""
    return int(value) if value == value.to_integral_value() else float(value)


# --- the assistant's controls (mangaassist_dev.product_ops) --------------------------------------
def cmd_token(args) -> int:
    from mangaassist_dev import product_ops

    where = platform(args)
    token = product_ops.mint_token(where, args.user, args.tier, args.minutes)
    expires = datetime.fromtimestamp(time.time() + args.minutes * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    emit(args, {"token": token, "user": args.user, "tier": args.tier, "expires_at": expires}, token)
    return 0


def _flags_line(document: dict, feature: str) -> str:
    def value(aspect: str):
        spec = document.get(f"{feature}_{aspect}") or {}
        rules = len(spec.get("rules") or {})
        shown = (spec.get("default", "-") if spec else "-") if spec.get("default") != "" else '""'
        return f"{shown} (+{rules} rules)" if rules else str(shown)

    return (f"  {feature:<10} enabled={value('enabled')} model={value('model')} max_tokens={value('max_tokens')} "
            f"prompt={value('prompt_version')} budget={value('daily_token_budget')} "
            f"over_budget={value('over_budget')} shadow={value('shadow_model') or '-'}")


def cmd_flags_show(args) -> int:
    from mangaassist_dev import product_ops

    where = platform(args)
    document, version = product_ops.read_flags(where)
    location = product_ops.flags_location(where)
    lines = [f"flags {location['application']}/{location.get('environment', '-')}/{location['profile']} "
             f"(version {version})"]
    lines += [_flags_line(document, feature) for feature in product_ops.FEATURES]
    emit(args, {"version": version, "location": location, "flags": document}, "\n".join(lines))
    return 0


def cmd_flags_evaluate(args) -> int:
    from mangaassist_dev import product_ops

    where = platform(args)
    document, version = product_ops.read_flags(where)
    result = product_ops.evaluate(document, args.feature, args.user, args.tier, where.models())
    result["budget_left"] = product_ops.budget_left(where, args.feature, result["daily_token_budget"])
    result["flags_version"] = version
    why = result["why"]
    left = "no budget" if result["budget_left"] is None else f"{result['budget_left']} tokens left today"
    lines = [f"{args.feature} for {args.user} ({args.tier}, bucket {result['user_bucket']}/100), flags {version}:",
             f"  enabled        {result['enabled']}  ({why['enabled']})",
             f"  model          {result['model_id']} as {result['model_rule']}  ({why['model']})",
             f"  prompt         {result['prompt_version']}  ({why['prompt_version']})",
             f"  max_tokens     {result['max_tokens']}  ({why['max_tokens']})",
             f"  budget         {result['daily_token_budget']} a day, {left}  ({why['daily_token_budget']})",
             f"  over budget    {result['over_budget']}  ({why['over_budget']})"]
    emit(args, result, "\n".join(lines))
    return 0


def read_flags_file(path: Path) -> dict:
    """A flags document from a file, refused (exit 2) unless it is Powertools' feature-flags schema."""
    from mangaassist_dev import product_ops

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise BadInput(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadInput(f"{path}: a flags document is a JSON object")
    try:
        product_ops.validate_flags(document)
    except product_ops.OperatorError as exc:
        raise BadInput(f"{path}: {exc}; nothing was pushed") from None
    return document


def _pushed(result: dict) -> str:
    where = f"{result['application']}/{result['profile']}"
    deployment = result.get("deployment")
    if isinstance(deployment, str):
        return f"pushed version {result['version']} of {where}: {deployment}"
    return f"pushed version {result['version']} of {where}: deployment {deployment} {result.get('state', '')}".rstrip()


def cmd_flags_push(args) -> int:
    from mangaassist_dev import product_ops

    document = read_flags_file(args.file)
    where = platform(args)
    result = product_ops.push_flags(where, document, f"ops.py flags push {args.file.name}")
    emit(args, {**result, "file": str(args.file)}, _pushed(result))
    return 0


def cmd_flags_switch(args) -> int:
    """The kill switch: the feature's ``<feature>_enabled`` forced off (kill) or on (revive), pushed."""
    from mangaassist_dev import product_ops

    enabled = args.flags_command == "revive"
    where = platform(args)
    document, version = product_ops.read_flags(where)
    changed = product_ops.switch_feature(document, args.feature, enabled)
    action = "revive" if enabled else "kill"
    result = product_ops.push_flags(where, changed, f"ops.py flags {action} {args.feature} (was {version})")
    when = ("within the functions' FLAGS_MAX_AGE_SECONDS" if where.local
            else "once the deployment completes, within the functions' FLAGS_MAX_AGE_SECONDS after that")
    emit(args, {**result, "feature": args.feature, "enabled": enabled, "previous_version": version},
         f"{args.feature} {'revived' if enabled else 'killed'} ({when}); {_pushed(result)}")
    return 0


def cmd_shadow(args) -> int:
    from mangaassist_dev import product_ops

    rows = product_ops.shadow_summary(platform(args), args.days)
    lines = [f"shadow comparisons over {args.days} day(s):"]
    if not rows:
        lines.append("  none yet (a `<feature>_shadow_model` flag sends a share of turns to a second model)")
    lines += [f"  {r['primary']} vs {r['shadow']}: {r['compared']} compared, mean similarity {r['mean_similarity']}, "
              f"latency {r['mean_latency_delta_ms']:+} ms, cost {r['mean_cost_delta_usd']:+.8f} USD per answer"
              for r in rows]
    emit(args, {"days": args.days, "pairs": rows}, "\n".join(lines))
    return 0


def events_pattern(values: list[str]) -> str:
    """An event pattern from ``source[/DetailType]`` shorthands; ``*`` at the end of either is a prefix."""
    def match(text: str):
        return {"prefix": text[:-1]} if text.endswith("*") else text

    clauses = []
    for value in values:
        source, _, detail_type = value.partition("/")
        if not source:
            raise BadInput(f"--events {value!r}: give source[/DetailType], e.g. mangaassist.jobs/JobCompleted")
        clause: dict = {"source": [match(source)]}
        if detail_type:
            clause["detail-type"] = [match(detail_type)]
        clauses.append(clause)
    return json.dumps(clauses[0] if len(clauses) == 1 else {"$or": clauses})


def _subscriptions(where):
    from mangaassist_dev import product_ops

    return product_ops.subscriptions(where)


def _subscription_call(call):
    """Runs a Subscriptions call; its refusals become one line (bad input: exit 2; unknown id: 1)."""
    from mangaassist.notifications.subscriptions import SubscriptionRefused, UnknownSubscription

    try:
        return call()
    except SubscriptionRefused as exc:
        raise BadInput(f"refused: {exc}") from None
    except UnknownSubscription as exc:
        raise OpsError(f"no subscription {exc.args[0]!r} (ops.py subscriptions list)") from None


def cmd_subscriptions_add(args) -> int:
    from mangaassist_dev import product_ops

    if bool(args.event_pattern) == bool(args.events):
        raise BadInput("say which events: --event-pattern JSON or --events source[/DetailType]... (one of them)")
    pattern = args.event_pattern or events_pattern(args.events)
    template = None
    if args.template is not None:
        try:
            template = json.loads(args.template)
        except ValueError as exc:
            raise BadInput(f"--template is not JSON: {exc}") from None
    subs = _subscriptions(platform(args))
    item, secret = _subscription_call(lambda: subs.add(args.url, pattern, template=template,
                                                       description=args.description or "", secret=args.secret))
    shown = {**product_ops.summary(item), "id": item["subscription_id"], "secret": secret}
    emit(args, shown, f"id {item['subscription_id']}\nsecret {secret}\n"
                      f"  {args.url} <- {json.dumps(json.loads(pattern))} (the secret is shown once)")
    return 0


def cmd_subscriptions_list(args) -> int:
    from mangaassist_dev import product_ops

    items = [product_ops.summary(i) for i in _subscriptions(platform(args)).every()]
    lines = [f"{len(items)} subscription(s)"]
    for item in items:
        state = "enabled " if item.get("enabled") else "disabled"
        if item.get("kind") == "callback":
            lines.append(f"  {item['subscription_id']:<26} {state} callbacks to {', '.join(item['allowed_hosts'])}")
        else:
            lines.append(f"  {item['subscription_id']:<26} {state} {item.get('url')} <- "
                         f"{json.dumps(item.get('event_pattern'))}")
    emit(args, {"subscriptions": items}, "\n".join(lines))
    return 0


def cmd_subscriptions_rotate(args) -> int:
    subs = _subscriptions(platform(args))
    overlap = 0 if args.expire_old else args.overlap
    secret = _subscription_call(lambda: subs.rotate(args.id, expire_old_in=overlap))
    until = "now" if not overlap else datetime.fromtimestamp(time.time() + overlap, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    emit(args, {"id": args.id, "secret": secret, "old_secrets_valid_until": until},
         f"secret {secret}\n  {args.id}: the previous secret(s) stay valid until {until}")
    return 0


def cmd_subscriptions_enable(args) -> int:
    enabled = args.subscriptions_command == "enable"
    subs = _subscriptions(platform(args))
    _subscription_call(lambda: subs.set_enabled(args.id, enabled))
    emit(args, {"id": args.id, "enabled": enabled}, f"{args.id} {'enabled' if enabled else 'disabled'}")
    return 0


def cmd_subscriptions_remove(args) -> int:
    subs = _subscriptions(platform(args))
    _subscription_call(lambda: subs.remove(args.id))
    emit(args, {"id": args.id, "removed": True}, f"{args.id} removed, with its secrets")
    return 0


def cmd_callbacks_set(args) -> int:
    """An API key's /v1/generate callbacks: the hosts its callback_url may name, and a new secret."""
    subs = _subscriptions(platform(args))
    item, secret = _subscription_call(lambda: subs.set_callbacks(args.client, args.allow_host))
    emit(args, {"id": item["subscription_id"], "client_id": args.client, "allowed_hosts": item["allowed_hosts"],
                "secret": secret},
         f"secret {secret}\n  callbacks of {args.client} to {', '.join(item['allowed_hosts'])} are signed with it "
         "(shown once; an earlier secret stays valid 24 h)")
    return 0


def outbound_status(where, peek: int = 10) -> dict:
    """The notifications queue (deliveries waiting or retrying) and its DLQ (given up), without
    taking anything off either: the dead letters are read with a zero visibility timeout."""
    sqs = where.client("sqs")
    status: dict = {}
    for key, name in (("queue", where.names["queues"]["notifications"]),
                      ("dlq", where.names["queue_dlqs"]["notifications"])):
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            status[key] = {"name": name, "missing": True}
            continue
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        status[key] = {"name": name, "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                       "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                       "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))}
        if key == "dlq" and status[key]["visible"]:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, peek), VisibilityTimeout=0,
                                      MessageAttributeNames=["All"]).get("Messages", [])
            status[key]["recent"] = [
                {name.lower(): attr.get("StringValue") for name, attr in m.get("MessageAttributes", {}).items()
                 if name in ("SUBSCRIPTION_ID", "LAST_STATUS", "ERROR_MESSAGE", "ATTEMPTS")} for m in got]
    return status


def cmd_callbacks(args) -> int:
    """Each API key's callback configuration, and how outbound deliveries stand."""
    from mangaassist_dev import product_ops

    where = platform(args)
    configured = [product_ops.summary(i) for i in _subscriptions(where).every() if i.get("kind") == "callback"]
    outbound = outbound_status(where)
    lines = [f"{len(configured)} API key(s) with callbacks"]
    lines += [f"  {c['subscription_id'].removeprefix('callback:'):<20} {'enabled ' if c.get('enabled') else 'disabled'}"
              f" hosts {', '.join(c.get('allowed_hosts', []))}" for c in configured]
    queue, dlq = outbound["queue"], outbound["dlq"]
    if queue.get("missing") or dlq.get("missing"):
        lines.append("outbound queue or its DLQ not found: " + ", ".join(q["name"] for q in (queue, dlq)
                                                                         if q.get("missing")))
    else:
        lines.append(f"outbound: {queue['visible']} waiting, {queue['delayed']} retrying later, {queue['in_flight']} "
                     f"being delivered; {dlq['visible'] or 'none'} dead-lettered ({dlq['name']})")
        lines += [f"  {d.get('subscription_id')}: {d.get('attempts')} attempts, last {d.get('last_status')}: "
                  f"{d.get('error_message')}" for d in dlq.get("recent", [])]
    emit(args, {"callbacks": configured, "outbound": outbound}, "\n".join(lines))
    return 0


def cmd_listen(args) -> int:
    from mangaassist_dev import product_ops

    secrets = list(args.secret or [])
    if args.subscription:
        subs = _subscriptions(platform(args))
        secrets += _subscription_call(lambda: (subs.get(args.subscription), subs.active_secrets(args.subscription))[1])
    if not secrets:
        raise BadInput("give the secret(s) to verify with: --secret whsec_... or --subscription ID")
    from mangaassist.notifications import signing

    for secret in secrets:
        try:
            signing.secret_key(secret)
        except ValueError as exc:
            raise BadInput(f"--secret: {exc}") from None

    def ready(server) -> None:
        print(f"listening on http://127.0.0.1:{server.server_address[1]}/ ({len(secrets)} secret(s)); "
              "one JSON line per delivery; Ctrl-C stops", file=sys.stderr, flush=True)

    product_ops.listen(args.port, secrets, ready=ready)
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument said in one line (exit status 2) instead of usage and error."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ops.py", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--local", action="store_true", help="act on the local stack (make run)")
    common.add_argument("--stack", default=None,
                        help="the local stack's description (default: $MANGAASSIST_DATA/stack.json, "
                             "or .local/stack.json)")
    common.add_argument("--outputs", default=None, metavar="FILE",
                        help="AWS: `terraform output -json` saved in FILE (default: run it in terraform/)")
    common.add_argument("--region", default=None)
    common.add_argument("--json", action="store_true", help="print JSON for machines")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("send", parents=[common], help="sign and send a webhook as that partner would")
    p.add_argument("source")
    p.add_argument("--file", required=True, type=file_path, help="the payload (a path, or file://path)")
    p.add_argument("--new-id", action="store_true",
                   help="a new delivery id (otherwise derived from the file: sending it again is a retry, answered 200 "
                        "duplicate)")
    p.add_argument("--url", help="override the webhook URL")
    p.add_argument("--scheme", default=None, help="override the signature scheme (default: the source's)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("replay", parents=[common], help="replay archived events to chosen rules")
    p.add_argument("--archive")
    p.add_argument("--from", dest="start", required=True, type=moment,
                   help="ISO 8601 time (UTC unless it says), epoch seconds, now, or relative: -30m, -1h, -2d")
    p.add_argument("--to", dest="end", required=True, type=moment, help="as --from")
    p.add_argument("--rule", action="append", help="a rule to receive the replay (repeatable); default: all")
    p.add_argument("--name", help="replay name, used once (default replay-<time>-<random>)")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--no-wait", action="store_true", help="start it and return, without following its progress")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("redrive", parents=[common], help="re-deliver dead letters to their targets")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--dlq", help="a target DLQ's name")
    which.add_argument("--all", action="store_true", help="every target DLQ")
    p.add_argument("--rule", help="with --target: that rule target's DLQ")
    p.add_argument("--target", help="a target id or function/queue name of --rule")
    p.add_argument("--max", type=positive, help="at most this many messages per DLQ")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_redrive)

    p = sub.add_parser("test-event-pattern", parents=[common], help="like `aws events test-event-pattern`, offline")
    p.add_argument("--event-pattern", required=True, type=inline_or_file, help="JSON, or file://path")
    p.add_argument("--event", required=True, type=inline_or_file, help="JSON, or file://path")
    p.set_defaults(func=cmd_test_event_pattern)

    p = sub.add_parser("status", parents=[common], help="per rule and target: delivered, failed, in DLQ, its DLQ")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("env", parents=[common], help='shell variables for the API: eval "$(ops.py env --local)"')
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("cost", parents=[common], help="daily tokens and cost per model, projected cost per 1M messages")
    p.add_argument("--days", type=days, default=7, help="how many days back, 1-366 (default 7)")
    p.add_argument("--messages-per-day", type=positive, default=1_000_000, help="volume the model part is projected to")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("token", parents=[common], help="an end-user token the local stack's JWT authorizer accepts")
    p.add_argument("--user", required=True, help="the token's subject (the end user's id)")
    p.add_argument("--tier", required=True, choices=TIERS, help="the user's segment: free or premium")
    p.add_argument("--minutes", type=positive, default=60, help="how long it is valid (default 60)")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("flags", help="feature flags: show, evaluate, push, kill and revive a feature")
    flags = p.add_subparsers(dest="flags_command", required=True)
    q = flags.add_parser("show", parents=[common], help="the flags document the functions read now, and its version")
    q.set_defaults(func=cmd_flags_show)
    q = flags.add_parser("evaluate", parents=[common],
                         help="what the flags decide for one user: model, prompt, limits, budget left, and why")
    q.add_argument("--feature", required=True, choices=FEATURES)
    q.add_argument("--user", required=True)
    q.add_argument("--tier", default="free", choices=TIERS)
    q.set_defaults(func=cmd_flags_evaluate)
    q = flags.add_parser("push", parents=[common],
                         help="a new hosted version of the flags file and (on AWS) its deployment; refused when "
                              "invalid")
    q.add_argument("--file", type=file_path, default=ROOT / "config" / "flags.json",
                   help="the flags document (default config/flags.json)")
    q.set_defaults(func=cmd_flags_push)
    for action, what in (("kill", "turn a feature off for everyone (its API answers 503)"),
                         ("revive", "turn a killed feature back on for everyone")):
        q = flags.add_parser(action, parents=[common], help=what)
        q.add_argument("feature", choices=FEATURES)
        q.set_defaults(func=cmd_flags_switch)

    p = sub.add_parser("shadow", parents=[common], help="shadow comparisons per model pair: similarity, latency, cost")
    p.add_argument("--days", type=days, default=7, help="how many days back, 1-366 (default 7)")
    p.set_defaults(func=cmd_shadow)

    p = sub.add_parser("subscriptions",
                       help="outbound subscriptions: add, list, rotate-secret, disable, enable, remove")
    subs = p.add_subparsers(dest="subscriptions_command", required=True)
    q = subs.add_parser("add", parents=[common], help="a new subscription; prints its id and signing secret")
    q.add_argument("--url", required=True, help="where deliveries are POSTed (https://; loopback only locally)")
    q.add_argument("--event-pattern", type=inline_or_file, help="an EventBridge event pattern: JSON, or file://path")
    q.add_argument("--events", nargs="+", metavar="SOURCE[/DETAIL-TYPE]",
                   help="shorthand for a pattern: mangaassist.jobs/JobCompleted mangaassist.ai/* ...")
    q.add_argument("--template", type=inline_or_file,
                   help='an input transformer: {"InputPathsMap": {...}, "InputTemplate": "..."} (JSON or file://)')
    q.add_argument("--secret", help="the first signing secret (whsec_...; default: a new one)")
    q.add_argument("--description", default="")
    q.set_defaults(func=cmd_subscriptions_add)
    q = subs.add_parser("list", parents=[common], help="every subscription and API key callback, enabled or not")
    q.set_defaults(func=cmd_subscriptions_list)
    q = subs.add_parser("rotate-secret", parents=[common],
                        help="a new signing secret; the old ones stay valid for --overlap seconds (24 h)")
    q.add_argument("id")
    q.add_argument("--overlap", type=positive, default=24 * 3600, help="seconds the old secrets stay valid")
    q.add_argument("--expire-old", action="store_true", help="the old secrets stop signing at once")
    q.set_defaults(func=cmd_subscriptions_rotate)
    for action, what in (("disable", "stop deliveries (kept, with its secrets)"), ("enable", "resume deliveries"),
                         ("remove", "delete it and its secrets")):
        q = subs.add_parser(action, parents=[common], help=what)
        q.add_argument("id")
        q.set_defaults(func=cmd_subscriptions_remove if action == "remove" else cmd_subscriptions_enable)

    p = sub.add_parser("callbacks", parents=[common],
                       help="API keys' /v1/generate callbacks and outbound delivery status; `callbacks set` configures")
    p.set_defaults(func=cmd_callbacks)
    callbacks = p.add_subparsers(dest="callbacks_command")
    q = callbacks.add_parser("set", parents=[common],
                             help="an API key's callback hosts and a new signing secret (shown once)")
    q.add_argument("--client", required=True, help="the API key's id (locally: dev or dev-2)")
    q.add_argument("--allow-host", required=True, nargs="+", help="host names its callback_url may name")
    q.set_defaults(func=cmd_callbacks_set)

    p = sub.add_parser("listen", parents=[common],
                       help="a local receiver on 127.0.0.1 that verifies Standard Webhooks signatures and prints each "
                            "delivery (like `stripe listen`)")
    p.add_argument("--port", type=port_number, default=8765)
    p.add_argument("--secret", action="append", help="a whsec_ secret to verify with (repeatable)")
    p.add_argument("--subscription", help="verify with this subscription's active secrets (read from the platform)")
    p.set_defaults(func=cmd_listen)
    return parser


def one_line(exc: BaseException) -> str:
    """What went wrong, as an operator can act on it."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError
    from mangaassist_dev.product_ops import OperatorError

    if isinstance(exc, (OpsError, OperatorError)):
        return str(exc)
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), or use --local"
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: configure them (aws configure, AWS_PROFILE), or use --local"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'ClientError')}: {error.get('Message', exc)} ({exc.operation_name})"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def relative_times_as_values(argv: list[str]) -> list[str]:
    """argparse takes ``--from -1h`` for two options; ``--from=-1h`` it reads as one with a value."""
    out, args = [], iter(argv)
    for arg in args:
        value = next(args, None) if arg in ("--from", "--to") else None
        if value is not None and _RELATIVE.fullmatch(value):
            out.append(f"{arg}={value}")
        else:
            out += [arg] + ([value] if value is not None else [])
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(relative_times_as_values(sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except BrokenPipeError:  # `ops.py status | head`
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback: one line (OPS_TRACEBACK=1 shows where)
        if os.environ.get("OPS_TRACEBACK"):
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, BadInput) else 1


if __name__ == "__main__":
    sys.exit(main())
