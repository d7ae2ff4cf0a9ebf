#!/usr/bin/env python3
"""Operator CLI: send signed webhooks, replay the archive, redrive dead letters, test patterns, cost.

Every command works against AWS (default credentials and region; names from --prefix) and
against the local stack (--local, reading .local/stack.json), prints a human summary, and
prints JSON instead with --json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from mangaassist_dev.delivery import parse_dead_letter
from mangaassist_dev.routing import load_wiring

from mangaassist.events.patterns import InvalidEventPattern, compile_pattern

ROOT = Path(__file__).resolve().parents[1]


class OpsError(Exception):
    """A failure the operator can act on: printed as one line, exit status 1."""


def http_json(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, head = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, head = exc.code, exc.read(), dict(exc.headers)
    except urllib.error.URLError as exc:
        raise OpsError(f"cannot reach {url}: {exc.reason}") from exc
    try:
        return status, json.loads(raw or b"{}"), head
    except ValueError:
        return status, {"raw": raw.decode("utf-8", "replace")}, head


# --- where the platform runs -------------------------------------------------------------------
class Local:
    """The stack `make run` started, described by its stack.json."""

    def __init__(self, stack_file: Path):
        if not stack_file.exists():
            raise OpsError(f"{stack_file} not found: start the local stack with `make run` first")
        self.info = json.loads(stack_file.read_text())
        import boto3

        self.aws = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                         region_name=self.info["region"])
        self.endpoint = self.info["aws_endpoint_url"]

    def client(self, service: str):
        return self.aws.client(service, endpoint_url=self.endpoint)

    def source(self, name: str) -> tuple[str, list[str]]:
        source = self.info["sources"].get(name)
        if not source:
            raise OpsError(f"unknown source {name!r}; sources: {', '.join(self.info['sources'])}")
        return source["url"], source["secrets"]

    def deliver_to(self, target_arn: str, event: dict) -> None:
        if ":sqs:" in target_arn:
            sqs = self.client("sqs")
            sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=target_arn.rsplit(":", 1)[-1])["QueueUrl"],
                             MessageBody=json.dumps(event))
            return
        function = target_arn.rsplit(":", 1)[-1].removeprefix(f"{self.info['prefix']}-")
        status, body, _ = http_json("POST", f"{self.info['base_url']}/_local/invoke/{function}", event)
        if status != 200 or body.get("status") != "ok":
            raise OpsError(body.get("error") or body.get("message") or f"HTTP {status}")

    def replay(self, start: float, end: float, rules: list[str] | None, name: str, dry_run: bool, archive: str) -> dict:
        status, body, _ = http_json("POST", f"{self.info['base_url']}/_local/replays", {
            "archive": archive, "name": name, "start": start, "end": end, "rules": rules, "dry_run": dry_run})
        if status != 200:
            raise OpsError(body.get("message", f"HTTP {status}"))
        return body

    def deliveries(self) -> dict:
        return http_json("GET", f"{self.info['base_url']}/_local/deliveries")[1]


class Cloud:
    """A `terraform apply`-ed deployment, found by its name prefix."""

    def __init__(self, prefix: str, region: str | None):
        import boto3

        self.aws = boto3.session.Session(region_name=region)
        self.prefix = prefix
        self.info = {"prefix": prefix, "bus": f"{prefix}-bus", "archive": f"{prefix}-archive"}

    def client(self, service: str):
        return self.aws.client(service)

    def source(self, name: str) -> tuple[str, list[str]]:
        secret = self.client("secretsmanager").get_secret_value(SecretId=f"{self.prefix}/webhooks/{name}")
        url = self.client("lambda").get_function_url_config(FunctionName=f"{self.prefix}-webhook_ingress")["FunctionUrl"]
        return f"{url.rstrip('/')}/webhooks/{name}", json.loads(secret["SecretString"])["secrets"]

    def deliver_to(self, target_arn: str, event: dict) -> None:
        if ":sqs:" in target_arn:
            sqs = self.client("sqs")
            url = sqs.get_queue_url(QueueName=target_arn.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
            return
        result = self.client("lambda").invoke(FunctionName=target_arn, Payload=json.dumps(event).encode())
        if result.get("FunctionError"):
            raise OpsError(f"{target_arn} failed: {result['Payload'].read().decode()[:500]}")

    def replay(self, start: float, end: float, rules: list[str] | None, name: str, dry_run: bool, archive: str) -> dict:
        events = self.client("events")
        if dry_run:
            described = events.describe_archive(ArchiveName=archive)
            return {"dry_run": True, "events": described.get("EventCount"), "rules": {},
                    "note": "AWS does not expose archived events; EventCount is the whole archive"}
        bus_arn = events.describe_event_bus(Name=self.info["bus"])["Arn"]
        destination = {"Arn": bus_arn}
        if rules:
            destination["FilterArns"] = [events.describe_rule(Name=f"{self.prefix}-{r}", EventBusName=self.info["bus"])["Arn"]
                                         for r in rules]
        archive_arn = events.describe_archive(ArchiveName=archive)["ArchiveArn"]
        events.start_replay(ReplayName=name, EventSourceArn=archive_arn, Destination=destination,
                            EventStartTime=datetime.fromtimestamp(start, UTC),
                            EventEndTime=datetime.fromtimestamp(end, UTC))
        while True:  # progress until the replay settles
            state = events.describe_replay(ReplayName=name)
            last = state.get("EventLastReplayedTime")
            print(f"  {state['State']:<10} replayed up to {last or '-'}", file=sys.stderr, flush=True)
            if state["State"] in ("COMPLETED", "FAILED", "CANCELLED"):
                return {"replay_name": name, "state": state["State"], "reason": state.get("StateReason")}
            time.sleep(5)


def platform(args):
    if args.local:
        return Local(Path(args.stack))
    return Cloud(args.prefix, args.region)


def emit(args, result: dict, human: str) -> None:
    print(json.dumps(result, indent=2, default=str) if args.json else human)


# --- commands ----------------------------------------------------------------------------------
def cmd_send(args) -> int:
    from mangaassist_dev.signing import sign

    where = platform(args)
    url, secrets = where.source(args.source)
    url = args.url or url
    body = Path(args.file).read_bytes()
    scheme = where.info["sources"][args.source]["scheme"] if args.local else args.scheme
    headers = {"content-type": "application/json", **sign(scheme, secrets, body)}
    status, answer, _ = http_json("POST", url, body, headers)
    emit(args, {"status": status, "response": answer}, f"{args.source}: HTTP {status} {json.dumps(answer)}")
    return 0 if status < 400 else 1


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cmd_replay(args) -> int:
    where = platform(args)
    start, end = _parse_time(args.start), _parse_time(args.end)
    name = args.name or f"replay-{int(time.time())}"
    result = where.replay(start, end, args.rule or None, name, args.dry_run, args.archive or where.info["archive"])
    lines = [f"{'dry run: ' if args.dry_run else ''}{result.get('events')} archived events in range"]
    lines += [f"  {rule:<28} {count} event(s)" for rule, count in result.get("rules", {}).items()]
    if not args.dry_run:
        lines.append(f"replay {result.get('replay_name')} {result.get('state', 'started')}")
    emit(args, result, "\n".join(lines))
    return 0


def cmd_redrive(args) -> int:
    where = platform(args)
    sqs = where.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=args.dlq)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise OpsError(f"no queue named {args.dlq!r}") from exc
    done, failed, seen, to_release = 0, [], set(), []
    while args.max is None or done + len(failed) < args.max:
        # A dry run only peeks (visibility 0); a redrive hides each message while it re-delivers it.
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    VisibilityTimeout=0 if args.dry_run else 30,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        to_release += [m for m in batch if m["MessageId"] in seen]
        if not fresh:
            break
        for message in fresh[: None if args.max is None else args.max - done - len(failed)]:
            seen.add(message["MessageId"])
            letter = parse_dead_letter(message)
            if args.dry_run:
                done += 1
                print(f"  would redrive {letter.event.get('id')} -> {letter.target_arn} ({letter.error_code})", file=sys.stderr)
                continue
            try:
                where.deliver_to(letter.target_arn, letter.event)
            except Exception as exc:  # it stays in the DLQ
                failed.append({"event_id": letter.event.get("id"), "error": str(exc)})
                to_release.append(message)
                continue
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            done += 1
            print(f"  redriven {letter.event.get('id')} -> {letter.target_arn}", file=sys.stderr, flush=True)
    for message in to_release:  # what failed, or was received twice, is visible again at once
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    left = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                        "ApproximateNumberOfMessagesNotVisible"])
               ["Attributes"]["ApproximateNumberOfMessages"])
    result = {"dlq": args.dlq, "dry_run": args.dry_run, "redriven": 0 if args.dry_run else done,
              "would_redrive": done if args.dry_run else 0, "failed": failed, "left_visible": left}
    verb = "would redrive" if args.dry_run else "redrove"
    emit(args, result, f"{verb} {done}, failed {len(failed)}, {left} left visible in {args.dlq}")
    return 1 if failed else 0


def cmd_test_event_pattern(args) -> int:
    try:
        matcher = compile_pattern(args.event_pattern)
        event = json.loads(args.event)
    except InvalidEventPattern as exc:
        emit(args, {"error": "InvalidEventPatternException", "message": str(exc)}, f"InvalidEventPatternException: {exc}")
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
    rows = {f"{r.name}/{t.id}": {"rule": r.name, "target": t.resource, "delivered": 0, "failed": 0, "in_dlq": 0}
            for r in wiring.rules for t in r.targets}
    sqs = where.client("sqs")
    archive = {}
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
        dlqs = {k: v["url"] for k, v in where.info["dlqs"].items()}
    else:
        dlqs = {}
        for key in rows:
            name = next((q for q in sqs.list_queues(QueueNamePrefix=f"{args.prefix}-dlq-{key.replace('/', '-')}"[:80])
                         .get("QueueUrls", [])), None)
            if name:
                dlqs[key] = name
        described = where.client("events").describe_archive(ArchiveName=where.info["archive"])
        archive = {"events": described.get("EventCount"), "size_bytes": described.get("SizeBytes")}
    for key, url in dlqs.items():
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        rows[key]["in_dlq"] = int(attrs["ApproximateNumberOfMessages"])
    result = {"targets": list(rows.values()), "archive": archive}
    lines = [f"{'rule':<24}{'target':<22}{'delivered':>10}{'failed':>8}{'in DLQ':>8}"]
    lines += [f"{r['rule']:<24}{r['target']:<22}{r['delivered']:>10}{r['failed']:>8}{r['in_dlq']:>8}" for r in rows.values()]
    lines.append(f"archive: {archive.get('events')} events, {archive.get('size_bytes')} bytes")
    if not args.local:
        lines.append("(delivered/failed counts on AWS are in CloudWatch: AWS/Events Invocations, FailedInvocations)")
    emit(args, result, "\n".join(lines))
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
    rows = [{"day": day, "model_id": model, **{k: str(v) for k, v in counters.items()}}
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
              "projected_cost_per_million_messages_usd": str(projected) if projected else None,
              "prices_as_of": PRICES_AS_OF, "model_cost_at_volume": asdict(model_part) if model_part else None}
    lines = [f"{'day':<12}{'model':<46}{'calls':>8}{'in tokens':>12}{'out tokens':>12}{'cost USD':>12}"]
    lines += [f"{r['day']:<12}{r['model_id']:<46}{r.get('calls', '0'):>8}{r.get('input_tokens', '0'):>12}"
              f"{r.get('output_tokens', '0'):>12}{float(r.get('cost_usd', 0)):>12.6f}" for r in rows]
    lines.append(f"projected cost per 1M messages: {'$' + str(projected) if projected else 'no model calls yet'}"
                 f" (prices as of {PRICES_AS_OF})")
    if model_part:
        lines += ["", "model part at this mix and these tokens (docs/capacity-and-cost.md):",
                  format_projection(model_part)]
    emit(args, result, "\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ops.py", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--local", action="store_true", help="act on the local stack (make run)")
    common.add_argument("--stack", default=str(ROOT / ".local" / "stack.json"), help="the local stack's description")
    common.add_argument("--prefix", default="mangaassist", help="terraform name_prefix of the deployment")
    common.add_argument("--region", default=None)
    common.add_argument("--json", action="store_true", help="print JSON for machines")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("send", parents=[common], help="sign and send a webhook as that partner would")
    p.add_argument("source")
    p.add_argument("--file", required=True)
    p.add_argument("--url", help="override the webhook URL")
    p.add_argument("--scheme", default=None, help="signature scheme (AWS only; local reads it from the stack)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("replay", parents=[common], help="replay archived events to chosen rules")
    p.add_argument("--archive")
    p.add_argument("--from", dest="start", required=True, help="ISO time or epoch seconds")
    p.add_argument("--to", dest="end", required=True, help="ISO time or epoch seconds")
    p.add_argument("--rule", action="append", help="a rule to receive the replay (repeatable); default: all")
    p.add_argument("--name", help="replay name (default replay-<epoch>)")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("redrive", parents=[common], help="re-deliver dead letters to their targets")
    p.add_argument("--dlq", required=True, help="DLQ name")
    p.add_argument("--max", type=int)
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_redrive)

    p = sub.add_parser("test-event-pattern", parents=[common], help="like `aws events test-event-pattern`, offline")
    p.add_argument("--event-pattern", required=True)
    p.add_argument("--event", required=True)
    p.set_defaults(func=cmd_test_event_pattern)

    p = sub.add_parser("status", parents=[common], help="per rule and target: delivered, failed, in DLQ")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("cost", parents=[common], help="daily tokens and cost per model, projected cost per 1M messages")
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--messages-per-day", type=int, default=1_000_000, help="volume the model part is projected to")
    p.set_defaults(func=cmd_cost)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `ops.py status | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
