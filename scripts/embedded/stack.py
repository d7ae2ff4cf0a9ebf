"""The whole platform in one process: moto, the functions, the router and the HTTP gateway.

Every resource comes from terraform/wiring.json, the file Terraform deploys from: tables with
their keys, buckets, target queues, one DLQ per rule target, the bus and its archive, and a
secret per webhook source seeded with dev values.
"""
from __future__ import annotations

import base64
import gc
import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from mangaassist_dev.naming import derive
from mangaassist_dev.tables import create_tables

ROOT = Path(__file__).resolve().parents[2]
REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
PREFIX = "mangaassist-local"
# The offline provider stands in for both models; their ids say which one answered.
LOCAL_FAST_MODEL, LOCAL_FALLBACK_MODEL = "local.fast-v1", "local.deep-v1"


def _dev_secret(scheme: str) -> str:
    if scheme == "standard-webhooks":
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    if scheme == "stripe":
        return "whsec_" + secrets.token_hex(16)
    return secrets.token_hex(20)


class Stack:
    def __init__(self, port: int, data_dir: Path, time_scale: float, shards: tuple[tuple[str, ...], ...] = ()):
        self.port = port
        self.shards = shards  # services whose moto runs in a process of its own (emulator_process.py)
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.time_scale = time_scale
        self.wiring_doc = json.loads((ROOT / "terraform" / "wiring.json").read_text())
        self.names = derive(PREFIX, self.wiring_doc, ACCOUNT)  # the names Terraform gives them
        self.bus_name = self.names["bus"]
        self.archive_name = self.names["archive"]
        self._stopped = threading.Event()

    # --- settings the functions read, as Terraform sets them on AWS --------------------------
    def _dev_credentials(self) -> dict:
        """Dev secrets and API key, kept in the data folder so a restart keeps them."""
        path = self.data_dir / "dev-credentials.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        creds = {
            "api_key": known.get("api_key") or secrets.token_urlsafe(24),
            "sources": {
                name: known.get("sources", {}).get(name) or {"scheme": spec["scheme"], "secrets": [_dev_secret(spec["scheme"])]}
                for name, spec in self.wiring_doc.get("sources", {}).items()
            },
        }
        path.write_text(json.dumps(creds, indent=2))
        path.chmod(0o600)
        return creds

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
            "LOCAL_MODEL_LATENCY_MS": os.environ.get("LOCAL_MODEL_LATENCY_MS", "0"),
            "LOCAL_MODEL_TOKENS_PER_SECOND": os.environ.get("LOCAL_MODEL_TOKENS_PER_SECOND", "50"),
            "BREAKER_TABLE": self.names["tables"]["breaker"],
            "EMBEDDINGS_PROVIDER": "local",
            "EMBEDDINGS_MODEL_ID": "local.hashed-ngrams-v1",
            "EMBEDDINGS_DIMENSION": "256",
            "VECTOR_STORE": "local",
            "VECTOR_INDEX": "products",
            "LOCAL_DATA_DIR": str(self.data_dir),
            "POWERTOOLS_SERVICE_NAME": "mangaassist",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            "POWERTOOLS_METRICS_NAMESPACE": "MangaAssist",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        env.update({f"{t.upper()}_TABLE": name for t, name in self.names["tables"].items()})
        env.update({f"{b.upper()}_BUCKET": name for b, name in self.names["buckets"].items()})
        # Queue URLs, as Terraform passes them (the stack's queues are created before any function runs).
        account_url = f"{endpoint.rstrip('/')}/{ACCOUNT}"
        env.update({f"{q.upper()}_QUEUE_URL": f"{account_url}/{name}" for q, name in self.names["queues"].items()})
        env["JOB_MAX_ATTEMPTS"] = str(self.wiring_doc["queues"]["jobs"]["max_receive_count"])
        return env

    # --- resources -------------------------------------------------------------------------
    def _create_resources(self, aws) -> None:
        doc = self.wiring_doc
        create_tables(aws.client("dynamodb"), self.names["tables"], doc.get("tables", {}))
        s3 = aws.client("s3")
        for name in doc.get("buckets", {}):
            s3.create_bucket(Bucket=self.names["buckets"][name],
                             CreateBucketConfiguration={"LocationConstraint": REGION})
        sqs = aws.client("sqs")
        self.queue_urls, self.queue_arns = {}, {}
        for name, spec in doc.get("queues", {}).items():
            dlq = sqs.create_queue(QueueName=self.names["queue_dlqs"][name])["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.queue_urls[name] = sqs.create_queue(QueueName=self.names["queues"][name], Attributes={
                "VisibilityTimeout": str(spec.get("visibility_timeout_seconds", 60)),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                             "maxReceiveCount": spec.get("max_receive_count", 5)}),
            })["QueueUrl"]
            self.queue_arns[name] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.names['queues'][name]}"
        self.dlqs = {}
        for rule in self.wiring.rules:
            for target in rule.targets:
                name = self.names["target_dlqs"][f"{rule.name}/{target.id}"]
                self.dlqs[f"{rule.name}/{target.id}"] = {"name": name, "url": sqs.create_queue(QueueName=name)["QueueUrl"]}
        events = aws.client("events")
        bus_arn = events.create_event_bus(Name=self.bus_name)["EventBusArn"]
        for rule in self.wiring.rules:  # described for `aws events` users; the router delivers
            events.put_rule(Name=self.names["rules"][rule.name], EventBusName=self.bus_name,
                            EventPattern=json.dumps(rule.event_pattern), Description=rule.description)
        archive = doc.get("archive") or {}
        events.create_archive(ArchiveName=self.archive_name, EventSourceArn=bus_arn,
                              EventPattern=json.dumps(archive.get("event_pattern") or {"source": [{"prefix": ""}]}),
                              RetentionDays=archive.get("retention_days", 0))
        sm = aws.client("secretsmanager")
        for name, source in self.credentials["sources"].items():
            sm.create_secret(Name=self.names["webhook_secrets"][name], SecretString=json.dumps({"secrets": source["secrets"]}))

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        from mangaassist_dev.delivery import Archive
        from mangaassist_dev.routing import parse_wiring

        from embedded.emulator_process import EmulatorProcess
        from embedded.gateway import Gateway
        from embedded.lambdas import Functions
        from embedded.router import QueueConsumer, Router

        self.wiring = parse_wiring(self.wiring_doc)
        self.credentials = self._dev_credentials()
        self.api_key = self.credentials["api_key"]
        self.emulator = EmulatorProcess(self.bus_name, lambda events: self.router.put(events), shards=self.shards).start()
        os.environ.update(self._environment(self.emulator.endpoint_url))
        import boto3

        aws = boto3.session.Session(region_name=REGION)
        self._create_resources(aws)
        archive_cfg = self.wiring.archive
        self.archive = Archive(self.archive_name, archive_cfg.event_pattern if archive_cfg else None,
                               self.data_dir / "archive.jsonl")
        self.functions = Functions(self.wiring.functions, names=self.names["functions"], region=REGION, account=ACCOUNT)
        self.router = Router(self.wiring, self.functions, aws, bus_name=self.bus_name, names=self.names, region=REGION,
                             account=ACCOUNT, archive=self.archive, dlq_urls={k: v["url"] for k, v in self.dlqs.items()},
                             queue_urls=self.queue_urls, time_scale=self.time_scale)
        # Lambda polls a queue with several concurrent batches (five to start with, at most the
        # mapping's maximum concurrency), so a busy queue drains while others are in flight.
        self.consumers = [
            QueueConsumer(name, spec, self.functions, aws, queue_url=self.queue_urls[name],
                          queue_arn=self.queue_arns[name], region=REGION, index=i)
            for name, spec in self.wiring.queues.items()
            for i in range(min(5, int(spec.get("maximum_concurrency", 5))))
        ]
        for consumer in self.consumers:
            consumer.start()
        gc.freeze()  # moto, boto3's models and the resources above live as long as the stack
        self.gateway = Gateway(self.port, self)
        self.port = self.gateway.server_address[1]
        threading.Thread(target=self.gateway.serve_forever, name="gateway", daemon=True).start()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.gateway.shutdown()
        for consumer in self.consumers:
            consumer.stop()
        self.router.shutdown()
        self.emulator.stop()
        self.archive.close()

    def description(self) -> dict:
        base = f"http://127.0.0.1:{self.port}"
        return {
            "base_url": base,
            "aws_endpoint_url": self.emulator.endpoint_url,
            "region": REGION,
            "prefix": PREFIX,
            "names": self.names,
            "api_key": self.api_key,
            "bus": self.bus_name,
            "archive": self.archive_name,
            "data_dir": str(self.data_dir),
            "pid": os.getpid(),
            "rules": {r.name: {"targets": [t.resource for t in r.targets]} for r in self.wiring.rules},
            "dlqs": self.dlqs,
            "sources": {name: {**s, "url": f"{base}/webhooks/{name}"} for name, s in self.credentials["sources"].items()},
            "routes": {key: f"{base}{key.split(' ', 1)[1]}" for key in self.wiring_doc.get("routes", {})},
        }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run the MangaAssist platform offline.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MANGAASSIST_DATA", ROOT / ".local")))
    parser.add_argument("--time-scale", type=float, default=float(os.environ.get("DELIVERY_TIME_SCALE", "0.001")),
                        help="multiplies EventBridge's retry delays and event age (0.001: hours become seconds)")
    parser.add_argument("--emulator-shards", default=os.environ.get("EMULATOR_SHARDS", ""),
                        help="services given a moto process of their own, e.g. s3,dynamodb (default: one process)")
    args = parser.parse_args(argv)

    from embedded.emulator_process import PER_SERVICE

    shards = tuple((service,) for service in filter(None, (s.strip().lower() for s in args.emulator_shards.split(","))))
    if not set(shards) <= set(PER_SERVICE):  # the rest must stay together (rules deliver to SQS inside moto)
        parser.error(f"--emulator-shards takes {', '.join(s for (s,) in PER_SERVICE)}, not {args.emulator_shards!r}")
    stack = Stack(args.port, args.data, args.time_scale, shards)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        stack.start()
    except OSError as exc:
        print(f"cannot start: {exc} (is another stack on port {args.port}? set PORT=...)", file=sys.stderr)
        return 1
    info = stack.description()
    (stack.data_dir / "stack.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"ready {info['base_url']} (AWS emulator {info['aws_endpoint_url']}, data {stack.data_dir})")
    print(f"  dev API key: {info['api_key']}")
    for name, source in info["sources"].items():
        print(f"  webhook {name:<8} POST {source['url']}  scheme={source['scheme']} secret={source['secrets'][0]}")
    for key, url in info["routes"].items():
        print(f"  route   {key:<24} {url}")
    print(f"  watch   {info['base_url']}/_local/   deliveries {info['base_url']}/_local/deliveries")
    print(f"  stack description: {stack.data_dir / 'stack.json'}; Ctrl-C stops", flush=True)
    stopping.wait()
    print("stopping", flush=True)
    stack.stop()
    return 0
