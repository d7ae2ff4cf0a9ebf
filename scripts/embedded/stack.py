"""The whole platform in one process: moto, the functions, the router and the HTTP gateway.

Every resource comes from terraform/wiring.json, the file Terraform deploys from: tables with
their keys, buckets, target queues, one DLQ per rule target, the bus and its archive, and a
secret per webhook source seeded with dev values.

The data folder (``MANGAASSIST_DATA``, default ``.local/``) keeps, across a stop or a crash:

- ``archive.jsonl``: every event the bus accepted (it is written before PutEvents answers);
- ``journal.jsonl``: which of their deliveries finished, and the replays started
  (mangaassist_dev.journal): at start, what was accepted and not finished is delivered again;
- ``emulator/*.pickle``: moto's state (emulator_state.py), saved at stop and snapshotted every
  ``EMULATOR_SNAPSHOT_SECONDS`` while running;
- ``dev-credentials.json`` (the dev API key and partner secrets), ``vectors/`` (the local vector
  index), and ``stack.json``, this run's description for ops.py and the tests.

Damaged files never stop a start: what was skipped is printed before ``ready``.
"""
from __future__ import annotations

import gc
import json
import os
import secrets
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mangaassist_dev.naming import derive

from embedded.rest_api import Plan

ROOT = Path(__file__).resolve().parents[2]
FLAGS_FILE = ROOT / "config" / "flags.json"  # served until `ops.py flags push` hosts a version
REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
PREFIX = "mangaassist-local"
# The offline provider stands in for both models; their ids say which one answered.
LOCAL_FAST_MODEL, LOCAL_FALLBACK_MODEL = "local.fast-v1", "local.deep-v1"
LOCAL_CANDIDATE_MODEL = "local.candidate-v1"  # what a flags rollout or a shadow tries


@dataclass(frozen=True)
class Settings:
    """Everything `make run` reads from its environment or arguments (main() parses them)."""

    port: int = 8080
    data_dir: Path = ROOT / ".local"
    time_scale: float = 0.001
    shards: tuple[tuple[str, ...], ...] = ()
    drain_seconds: float = 10.0
    snapshot_seconds: float = 5.0
    log_level: str = "INFO"
    log_format: str = "text"
    header_timeout: float = 10.0  # the gateway's limits (embedded/http_server.Limits)
    idle_timeout: float = 30.0
    body_timeout: float = 30.0
    usage_plan: Plan = Plan()  # the clients' usage plan per API key (rest_api.py)
    model_tokens_per_second: float = 150.0  # the local model's pace (0: as fast as it can)
    websocket_idle_seconds: float = 600.0  # API Gateway's WebSocket idle timeout (embedded/websocket_api.py)
    websocket_max_seconds: float = 7200.0  # and its maximum connection duration
    notify_timeout: float = 10.0  # one outbound delivery attempt's bound (NOTIFY_TIMEOUT_SECONDS)
    notify_cache_seconds: float = 2.0  # subscriptions and secrets reread this often (30 s on AWS)
    notify_ca_file: str = ""  # the CAs https receivers on this machine are checked against (default: the system's)
    local_receiver_url: str = "http://127.0.0.1:9000/webhooks"  # the seeded subscription's (embedded/notifications)


class Stack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.port = settings.port
        self.data_dir = settings.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.wiring_doc = json.loads((ROOT / "terraform" / "wiring.json").read_text())
        self.names = derive(PREFIX, self.wiring_doc, ACCOUNT)  # the names Terraform gives them
        self.names["appconfig"] = {**self.names["appconfig"], "environment": "local"}
        self.region, self.account = REGION, ACCOUNT
        self.bus_name = self.names["bus"]
        self.archive_name = self.names["archive"]
        self.local_token = secrets.token_urlsafe(24)  # a new one each run: /_local's changes need it
        self.notes: list[str] = []  # what start() skipped, replaced or resumed, printed before ready
        self._stopped = threading.Event()

    # --- settings the functions read, as Terraform sets them on AWS --------------------------
    def _environment(self, endpoint: str) -> dict:
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "BUILD_VERSION": "local",
            "EVENT_BUS_NAME": self.bus_name,
            "WEBHOOK_SOURCES": json.dumps(self.wiring_doc.get("sources", {})),
            "WEBHOOK_MAX_BODY_BYTES": str(1024 * 1024),
            "WEBHOOK_SECRET_PREFIX": self.names["webhook_secret_prefix"],
            "MODEL_PROVIDER": "local",
            "MODEL_FAST_ID": LOCAL_FAST_MODEL,
            "MODEL_FALLBACK_ID": LOCAL_FALLBACK_MODEL,
            "MODEL_CANDIDATE_ID": LOCAL_CANDIDATE_MODEL,
            "LOCAL_MODEL_LATENCY_MS": os.environ.get("LOCAL_MODEL_LATENCY_MS", "0"),
            "LOCAL_MODEL_TOKENS_PER_SECOND": f"{self.settings.model_tokens_per_second:g}",
            "APPCONFIG_APPLICATION": self.names["appconfig"]["application"],
            "APPCONFIG_ENVIRONMENT": self.names["appconfig"]["environment"],
            "APPCONFIG_PROFILE": self.names["appconfig"]["profile"],
            # AppConfig's data API polls no faster than every 15 s on AWS; locally an edit of
            # config/flags.json or a push reaches the functions within this.
            "FLAGS_MAX_AGE_SECONDS": "2",
            "NOTIFY_SECRET_PREFIX": self.names["notification_secret_prefix"],
            "NOTIFY_ALLOW_LOOPBACK": "true",  # partners' receivers run on this machine too
            "NOTIFY_TIME_SCALE": str(self.settings.time_scale),
            "NOTIFY_TIMEOUT_SECONDS": f"{self.settings.notify_timeout:g}",
            # An operator's new subscription or rotated secret counts within this, like the flags.
            "NOTIFY_CACHE_SECONDS": f"{self.settings.notify_cache_seconds:g}",
            "NOTIFY_CA_FILE": self.settings.notify_ca_file,
            "JWT_REQUIRED": "false",
            "BREAKER_TABLE": self.names["tables"]["breaker"],
            "EMBEDDINGS_PROVIDER": "local",
            "EMBEDDINGS_MODEL_ID": "local.hashed-ngrams-v1",
            "EMBEDDINGS_DIMENSION": "256",
            "VECTOR_STORE": "local",
            "VECTOR_INDEX": "products",
            "LOCAL_DATA_DIR": str(self.data_dir),
            "POWERTOOLS_SERVICE_NAME": "mangaassist",
            "POWERTOOLS_LOG_LEVEL": self.settings.log_level,
            "POWERTOOLS_METRICS_NAMESPACE": "MangaAssist",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        env.update({f"{t.upper()}_TABLE": name for t, name in self.names["tables"].items()})
        env.update({f"{b.upper()}_BUCKET": name for b, name in self.names["buckets"].items()})
        # Queue URLs, as Terraform passes them (the stack's queues are created before any function runs).
        account_url = f"{endpoint.rstrip('/')}/{ACCOUNT}"
        env.update({f"{q.upper()}_QUEUE_URL": f"{account_url}/{name}" for q, name in self.names["queues"].items()})
        # and each queue's own DLQ (the notifications dispatcher dead-letters into it itself)
        env.update({f"{q.upper()}_DLQ_URL": f"{account_url}/{name}" for q, name in self.names["queue_dlqs"].items()})
        env["JOB_MAX_ATTEMPTS"] = str(self.wiring_doc["queues"]["jobs"]["max_receive_count"])
        return env

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        from mangaassist_dev.delivery import Archive
        from mangaassist_dev.journal import Journal
        from mangaassist_dev.routing import parse_wiring

        from embedded import dev_credentials, function_logs
        from embedded.emulator_process import EmulatorProcess

        self.wiring = parse_wiring(self.wiring_doc)
        self.credentials, notes = dev_credentials.load(self.data_dir / "dev-credentials.json",
                                                       self.wiring_doc.get("sources", {}))
        self.notes += notes
        self.api_key = self.credentials["api_key"]
        self.api_keys = {"dev": self.credentials["api_key"], "dev-2": self.credentials["api_key_2"]}
        self.api_key_ids = {value: key_id for key_id, value in self.api_keys.items()}
        from embedded.dev_identity import DevIdentity

        self.identity = DevIdentity(self.data_dir / "dev-jwt-key.pem")
        self.notes += self.identity.notes
        function_logs.configure("mangaassist", self.settings.log_level, self.settings.log_format)
        archive_cfg = self.wiring.archive
        self.archive = Archive(self.archive_name, archive_cfg.event_pattern if archive_cfg else None,
                               self.data_dir / "archive.jsonl")
        from mangaassist.search.local_store import check as check_vector_indexes

        self.notes += check_vector_indexes(self.data_dir)
        self.journal = Journal(self.data_dir / "journal.jsonl")
        journaled = self.journal.exists()
        contents = self.journal.load()
        self.notes += [d.describe() for d in (self.archive.damage, contents.damage) if d]
        self.emulator = EmulatorProcess(self.bus_name, lambda events: self.router.put(events),
                                        shards=self.settings.shards, state_folder=self.data_dir / "emulator",
                                        snapshot_seconds=self.settings.snapshot_seconds,
                                        appconfig={**self.names["appconfig"], "account": ACCOUNT, "region": REGION,
                                                   "flags_file": str(FLAGS_FILE)}).start()
        restored = self.emulator.restored
        self.notes += [f"emulator state: {line}" for line in restored["skipped"]]
        if restored["services"]:
            taken = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(restored["taken_at"]))
            self.notes.append(f"restored emulator state of {taken} ({', '.join(restored['services'])})")
        if not journaled and self.archive.event_count:
            # A data folder from before the journal: its archive's deliveries were made then.
            contents.baseline = time.time()
            self.journal.baseline(contents.baseline)
            self.notes.append(f"archive.jsonl predates the journal: its {self.archive.event_count} events count as "
                              "delivered")
        os.environ.update(self._environment(self.emulator.endpoint_url))
        self._start_delivering(contents, restored["taken_at"] or 0.0)

    def _start_delivering(self, contents, trusted_until: float) -> None:
        import boto3
        from mangaassist_dev.journal import trusted, unfinished

        from embedded.dead_letters import DeadLetters
        from embedded.lambdas import Functions
        from embedded.resources import ensure_flags_profile, ensure_resources
        from embedded.router import QueueConsumer, Router

        aws = boto3.session.Session(region_name=REGION)
        queues = ensure_resources(aws, self.wiring_doc, self.wiring, self.names, self.credentials, REGION, ACCOUNT)
        self.queue_urls, self.dlqs = queues["urls"], queues["dlqs"]
        self.names["appconfig"].update(ensure_flags_profile(aws, self.names, self.data_dir / "appconfig-ids.json"))
        self._seed_notifications(aws)
        self.functions = Functions(self.wiring.functions, names=self.names["functions"], region=REGION, account=ACCOUNT)
        self.router = Router(self.wiring, self.functions, aws, bus_name=self.bus_name, names=self.names,
                             region=REGION, account=ACCOUNT, archive=self.archive, journal=self.journal,
                             dlq_urls={k: v["url"] for k, v in self.dlqs.items()}, queue_urls=self.queue_urls,
                             time_scale=self.settings.time_scale)
        self.dead_letters = DeadLetters(aws.client("sqs"), self.dlqs, self.router, self.wiring)
        self._start_gateway()
        done = trusted(contents, trusted_until)
        self.router.log.restore(sorted(done.values(), key=lambda r: r["finished_at"])[-self.router.log_limit:])
        self.router.known_replays(contents.replays, done)
        pending = unfinished(self.archive.archived(), self.wiring, contents, trusted_until, self.archive.between)
        # Lambda polls a queue with several concurrent batches (five to start with, at most the
        # mapping's maximum concurrency), so a busy queue drains while others are in flight.
        self.consumers = [
            QueueConsumer(name, spec, self.functions, aws, queue_url=self.queue_urls[name],
                          queue_arn=queues["arns"][name], region=REGION, index=i)
            for name, spec in self.wiring.queues.items()
            for i in range(min(5, int(spec.get("maximum_concurrency", 5))))
        ]
        for consumer in self.consumers:
            consumer.start()
        self.router.resume(pending)
        self.notes.append(f"resumed {len(pending)} deliveries")
        gc.freeze()  # moto's clients, boto3's models and the resources above live as long as the stack

    def _seed_notifications(self, aws) -> None:
        from embedded.notifications import seed_subscription
        from mangaassist.notifications.subscriptions import Subscriptions

        subscriptions = Subscriptions(aws.resource("dynamodb").Table(self.names["tables"]["subscriptions"]),
                                      aws.client("secretsmanager"),
                                      secret_prefix=self.names["notification_secret_prefix"], allow_loopback=True)
        self.notifications, notes = seed_subscription(subscriptions, self.settings.local_receiver_url)
        self.notes += notes

    def _start_gateway(self) -> None:
        """Listen, then give the functions the settings that name this port (issuer, callbacks):
        before any function runs, as they read their settings at init."""
        from embedded.gateway import Gateway
        from embedded.http_server import Limits
        from embedded.websocket_api import WebSocketLimits

        settings = self.settings
        self.gateway = Gateway(self, Limits(header_timeout=settings.header_timeout, idle_timeout=settings.idle_timeout,
                                            body_timeout=settings.body_timeout),
                               WebSocketLimits(idle_seconds=settings.websocket_idle_seconds,
                                               max_seconds=settings.websocket_max_seconds))
        self.port = self.gateway.start(self.port)
        jwt = self.identity.description(f"http://127.0.0.1:{self.port}")
        os.environ.update({"JWT_ISSUER": jwt["issuer"], "JWT_AUDIENCE": jwt["audience"],
                           "JWT_JWKS_URL": jwt["jwks_url"],
                           "WEBSOCKET_CALLBACK_URL": f"http://127.0.0.1:{self.port}/_aws/ws"})

    def openapi(self) -> dict:
        return json.loads((ROOT / "schemas" / "api" / "openapi.json").read_text())

    def stop(self) -> None:
        """Stop accepting, drain deliveries for up to ``drain_seconds``, then save and stop."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        started = time.monotonic()
        self.gateway.stop_accepting()
        self.gateway.stop()  # requests in progress finish (their PutEvents included)
        pending = self.router.log.open
        print(f"stopping: no new requests; draining {pending} deliveries (up to {self.settings.drain_seconds:g} s)",
              flush=True)
        left = self.router.drain(self.settings.drain_seconds)
        self.router.shutdown()
        for consumer in self.consumers:
            consumer.stop()
        for consumer in self.consumers:
            consumer.join(5)  # a batch in progress finishes before the state is saved
        print(f"drained in {time.monotonic() - started:.1f} s: "
              + (f"{left} deliveries left for the next start" if left else "every delivery finished"), flush=True)
        saved = self.emulator.stop()
        for error in saved["errors"]:
            print(f"emulator state NOT saved: {error}", flush=True)
        print(f"saved emulator state ({saved['bytes'] / 1e6:.1f} MB) in {saved['seconds']:.1f} s", flush=True)
        self.archive.close()
        self.journal.close()

    def description(self) -> dict:
        base = f"http://127.0.0.1:{self.port}"
        return {
            "base_url": base,
            "aws_endpoint_url": self.emulator.endpoint_url,
            "region": REGION,
            "prefix": PREFIX,
            "names": self.names,
            "api_key": self.api_key,
            "api_keys": self.api_keys,
            "jwt": self.identity.description(base),
            "openapi_url": f"{base}/openapi.json",
            "websocket_url": f"ws://127.0.0.1:{self.port}/ws",
            "websocket_callback_url": f"{base}/_aws/ws",
            "models": {"fast": LOCAL_FAST_MODEL, "fallback": LOCAL_FALLBACK_MODEL, "candidate": LOCAL_CANDIDATE_MODEL},
            "local_token": self.local_token,
            "bus": self.bus_name,
            "archive": self.archive_name,
            "data_dir": str(self.data_dir),
            "pid": os.getpid(),
            "emulator_pids": self.emulator.pids,
            "rules": {r.name: {"targets": [t.resource for t in r.targets]} for r in self.wiring.rules},
            "dlqs": self.dlqs,
            "sources": {name: {**s, "url": f"{base}/webhooks/{name}"}
                        for name, s in self.credentials["sources"].items()},
            "routes": {key: f"{base}{key.split(' ', 1)[1]}" for key in self.wiring_doc.get("routes", {})},
            "notifications": self.notifications,
        }


def settings_from(argv: list[str] | None) -> Settings:
    """The command line, each option defaulting to its environment variable."""
    import argparse

    from embedded.emulator_process import PER_SERVICE

    env = os.environ.get
    parser = argparse.ArgumentParser(description="Run the MangaAssist platform offline.")
    parser.add_argument("--port", type=int, default=int(env("PORT", "8080")))
    parser.add_argument("--data", type=Path, default=Path(env("MANGAASSIST_DATA", str(ROOT / ".local"))))
    parser.add_argument("--time-scale", type=float, default=float(env("DELIVERY_TIME_SCALE", "0.001")),
                        help="multiplies EventBridge's retry delays and event age (0.001: hours become seconds)")
    parser.add_argument("--emulator-shards", default=env("EMULATOR_SHARDS", ""),
                        help="services given a moto process of their own, e.g. s3,dynamodb (default: one process)")
    parser.add_argument("--drain-seconds", type=float, default=float(env("DRAIN_SECONDS", "10")),
                        help="at stop, how long deliveries in progress may take before the state is saved")
    parser.add_argument("--snapshot-seconds", type=float, default=float(env("EMULATOR_SNAPSHOT_SECONDS", "5")),
                        help="how often the emulator's state is snapshotted while running (0: only at stop)")
    parser.add_argument("--log-format", choices=("text", "json"), default=env("FUNCTION_LOGS", "text"),
                        help="function logs: one readable line each (text) or Powertools' JSON")
    args = parser.parse_args(argv)
    shards = tuple((service,) for service in filter(None, (s.strip().lower() for s in args.emulator_shards.split(","))))
    if not set(shards) <= set(PER_SERVICE):  # the rest must stay together (rules deliver to SQS inside moto)
        parser.error(f"--emulator-shards takes {', '.join(s for (s,) in PER_SERVICE)}, not {args.emulator_shards!r}")
    if args.drain_seconds < 0 or args.snapshot_seconds < 0:
        parser.error("--drain-seconds and --snapshot-seconds must be >= 0")
    try:
        timeouts = {name: float(env(f"GATEWAY_{name.upper()}", default))
                    for name, default in (("header_timeout", "10"), ("idle_timeout", "30"), ("body_timeout", "30"))}
    except ValueError as exc:
        parser.error(f"GATEWAY_*_TIMEOUT: {exc}")
    if min(timeouts.values()) <= 0:
        parser.error("GATEWAY_*_TIMEOUT must be > 0 seconds")
    try:  # the clients' usage plan per API key, and the local model's pace
        plan = Plan(rate=float(env("USAGE_PLAN_RATE", "100")), burst=int(env("USAGE_PLAN_BURST", "200")),
                    daily_quota=int(env("USAGE_PLAN_DAILY_QUOTA", "10000")))
        pace = float(env("LOCAL_MODEL_TOKENS_PER_SECOND", "150"))
        websocket = {"websocket_idle_seconds": float(env("WEBSOCKET_IDLE_SECONDS", "600")),
                     "websocket_max_seconds": float(env("WEBSOCKET_MAX_SECONDS", "7200"))}
        notify_timeout = float(env("NOTIFY_TIMEOUT_SECONDS", "10"))
        notify_cache_seconds = float(env("NOTIFY_CACHE_SECONDS", "2"))
    except ValueError as exc:
        parser.error(f"USAGE_PLAN_* / LOCAL_MODEL_TOKENS_PER_SECOND / WEBSOCKET_*_SECONDS / NOTIFY_*_SECONDS: {exc}")
    if notify_timeout <= 0 or notify_cache_seconds < 0:
        parser.error("NOTIFY_TIMEOUT_SECONDS must be > 0, NOTIFY_CACHE_SECONDS >= 0")
    if plan.rate <= 0 or plan.burst < 1 or plan.daily_quota < 1 or pace < 0 or min(websocket.values()) <= 0:
        parser.error("USAGE_PLAN_RATE must be > 0, USAGE_PLAN_BURST and USAGE_PLAN_DAILY_QUOTA >= 1, "
                     "LOCAL_MODEL_TOKENS_PER_SECOND >= 0, WEBSOCKET_IDLE_SECONDS and WEBSOCKET_MAX_SECONDS > 0")
    return Settings(port=args.port, data_dir=args.data, time_scale=args.time_scale, shards=shards,
                    drain_seconds=args.drain_seconds, snapshot_seconds=args.snapshot_seconds,
                    log_level=env("POWERTOOLS_LOG_LEVEL", "INFO"), log_format=args.log_format, usage_plan=plan,
                    model_tokens_per_second=pace, notify_timeout=notify_timeout,
                    notify_cache_seconds=notify_cache_seconds, notify_ca_file=env("NOTIFY_CA_FILE", ""),
                    local_receiver_url=env("LOCAL_RECEIVER_URL", Settings.local_receiver_url), **timeouts,
                    **websocket)


def print_ready(stack: Stack) -> None:
    info = stack.description()
    path = stack.data_dir / "stack.json"
    path.write_text(json.dumps(info, indent=2) + "\n")
    path.chmod(0o600)  # the API key, the partner secrets and the dev token
    for note in stack.notes:
        print(note)
    print(f"ready {info['base_url']} (AWS emulator {info['aws_endpoint_url']}, data {stack.data_dir})")
    print(f"  dev API key: {info['api_key']}")
    print(f"  dev token for /_local changes (x-local-token): {info['local_token']}")
    for name, source in info["sources"].items():
        print(f"  webhook {name:<8} POST {source['url']}  scheme={source['scheme']} secret={source['secrets'][0]}")
    for key, url in info["routes"].items():
        print(f"  route   {key:<24} {url}")
    print(f"  websocket {info['websocket_url']}?api_key=...  (@connections: {info['websocket_callback_url']})")
    seeded = (info.get("notifications") or {}).get("seeded")
    if seeded:
        state = "enabled" if seeded["enabled"] else "disabled"
        print(f"  notify  {seeded['subscription_id']} -> {seeded['url']} ({state}; see its deliveries with "
              f"scripts/ops.py listen --port {urlsplit(seeded['url']).port or 80})")
    print(f"  watch   {info['base_url']}/_local/   deliveries {info['base_url']}/_local/deliveries")
    print(f"  stack description: {path}; Ctrl-C stops (twice: at once)", flush=True)


def main(argv: list[str] | None = None) -> None:
    stack = Stack(settings_from(argv))
    stopping = threading.Event()

    def on_signal(signum, frame) -> None:
        if stopping.is_set():  # a second Ctrl-C: stop now; the emulator saves its state as it exits
            print("stopping at once", flush=True)
            os._exit(130)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        stack.start()
    except OSError as exc:
        print(f"cannot start: {exc} (is another stack on port {stack.port}? set PORT=...)", file=sys.stderr)
        emulator = getattr(stack, "emulator", None)
        if emulator is not None:
            emulator.stop()
        sys.stderr.flush()
        os._exit(1)  # deliveries resumed before the failure may be running: nothing to wait for
    print_ready(stack)
    stopping.wait()
    try:
        stack.stop()
    except BaseException:
        traceback.print_exc()
        code = 1
    else:
        code = 0
    # Everything that matters is saved. A function call still finishing on a pool thread, which
    # nobody waits for any more, must not hold the exit (the interpreter joins pool threads).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
