#!/usr/bin/env python3
"""Cold start as Lambda pays it, per function, against `import boto3` and one client.

Each sample is a fresh process, as a new Lambda execution environment is: it imports the handler
(with the function's folder and the layer on its path, as /var/task and /opt/python are), which
is Lambda's init, then invokes it twice with the event its trigger sends (wiring.json says which:
a function URL, a REST route, a rule, a queue). Handlers defer boto3, clients and some imports to
their first invocation, so the first one pays for them; the second is a warm invocation. The
cold start is what the first invocation and the import cost more than a warm invocation:

    cold = import + first invocation - second invocation

The baseline is a fresh process that imports boto3 and builds one client (what any function
calling AWS pays at the least). Goal: cold / baseline <= 1.5 for every function.

Each function runs in the environment the local stack (and Terraform) gives it, with every
setting (mangaassist.settings) and AWS_ENDPOINT_URL at the local stack's AWS emulator on
127.0.0.1, provisioned as `make run` provisions it (tables, buckets, queues, bus, secrets): the
invocations take their normal path and make their real calls, and nothing leaves the machine
(each probe also refuses any socket that is not loopback or a Unix socket). Every event is valid, so
each invocation takes its normal path (events_for): REST routes get their schemas/api sample body,
the dev API key and a verified end user; the authorizer a REQUEST event with a token signed by the
stack's dev key (its JWKS served on loopback, as the gateway serves it); websocket a $connect;
job_worker a job queued in the jobs table; stream_worker the turn of an open connection (frames
go to a loopback stand-in for the management API). An invocation that fails, answers 4xx or 5xx,
fails a record or is refused by the authorizer makes the benchmark say it cannot measure and exit
2; a missed goal exits 1.

Also reports the zip sizes from build/manifest.json (goal: function zips <= 64 KB, layer <= 25 MB).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared" / "python"
sys.path[:0] = [str(LAYER), str(ROOT / "scripts")]
RATIO_GOAL, FUNCTION_ZIP_GOAL, LAYER_ZIP_GOAL = 1.5, 64 * 1024, 25 * 1024 * 1024
CANNOT_MEASURE = 2

# Runs in each fresh process. The guard comes first and both probes install it, so both pay for it.
GUARD = """
import socket, sys, time
_connect = socket.socket.connect
def _loopback_only(self, address):
    if self.family != socket.AF_UNIX and address[0] not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"the benchmark refuses a connection leaving the machine: {address!r}")
    return _connect(self, address)
socket.socket.connect = _loopback_only
"""
HANDLER_PROBE = GUARD + """
import json
setup = json.loads(sys.argv[1])
class Context:
    function_name, function_version, memory_limit_in_mb = setup["name"], "$LATEST", setup["memory"]
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:" + setup["name"]
    aws_request_id, log_group_name, log_stream_name = "bench", "/aws/lambda/bench", "bench"
    def get_remaining_time_in_millis(self):
        return 10_000
with open(setup["events"]) as file:
    first, second = json.load(file)
start = time.perf_counter()
sys.path[:0] = setup["paths"]
import handler
imported = time.perf_counter()
answers = [handler.lambda_handler(first, Context())]
invoked = time.perf_counter()
answers.append(handler.lambda_handler(second, Context()))
again = time.perf_counter()
print(json.dumps({"import": imported - start, "first": invoked - imported, "second": again - invoked,
                  "answers": answers}, default=str))
"""
BASELINE_PROBE = GUARD + """
start = time.perf_counter()
import boto3
imported = time.perf_counter()
client = boto3.client("dynamodb")
print(__import__("json").dumps({"baseline": time.perf_counter() - start, "import_boto3": imported - start}))
"""


def run_probe(code: str, env: dict, setup: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", code, json.dumps(setup or {})], capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-2000:] or f"exit {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- each function's first and second event, as its trigger sends it ------------------------
class World:
    """What the events need from the running platform: the dev API key and its id, end-user tokens
    signed with the stack's dev key (as `ops.py token` mints them), and rows a worker's message
    names (a queued job, an open WebSocket connection), made in the emulator before the message."""

    def __init__(self, credentials: dict, jwt: dict, names: dict):
        self.credentials, self.jwt, self.names = credentials, jwt, names
        self.api_key, self.api_key_id = credentials["api_key"], "dev"

    def token(self, user: str, tier: str = "premium") -> str:
        from mangaassist_dev.product_ops import mint_token

        where = type("Where", (), {"local": True, "info": {"jwt": self.jwt}})()
        return mint_token(where, user, tier, 60)

    def authorized(self, user: str, tier: str = "premium") -> dict:
        """The authorizer's context for a verified token, as API Gateway passes it on."""
        return {"sub": user, "tier": tier, "principalId": user}

    def table(self, key: str):
        import boto3

        return boto3.session.Session().resource("dynamodb").Table(self.names["tables"][key])

    def queued_job(self, request: dict) -> str:
        from mangaassist.dal.jobs import Jobs
        from mangaassist.jobs import JOB_TTL_SECONDS

        job_id = "job_" + uuid.uuid4().hex[:20]
        Jobs(self.table("jobs"), ttl_seconds=JOB_TTL_SECONDS).create(
            job_id, client_id=self.api_key_id, task=request["task"], input=request["input"], callback_url=None)
        return job_id

    def streaming_connection(self, user: str) -> tuple[str, str]:
        """An open connection whose turn the websocket function queued: (connection id, request id)."""
        from mangaassist.dal.connections import Connections

        connections = Connections(self.table("connections"))
        connection_id, request_id = f"bench{uuid.uuid4().hex[:8]}=", "req_" + uuid.uuid4().hex[:20]
        connections.open(connection_id, client_id=self.api_key_id, user_id=user, tier="premium")
        assert connections.claim_stream(connection_id, request_id)
        return connection_id, request_id


def envelope(source: str, detail_type: str, detail: dict) -> dict:
    from embedded.aws import envelope as as_delivered

    entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": "bench"}
    return as_delivered(entry, str(uuid.uuid4()), "ap-northeast-1")


def sample_detail(source: str, detail_type: str) -> dict:
    path = ROOT / "schemas" / "events" / source / f"{detail_type}.samples.json"
    return json.loads(path.read_text(encoding="utf-8"))["valid"][0]["detail"]


def api_sample(contract: str) -> dict:
    """The first valid sample of a schemas/api contract (a request body the validator accepts)."""
    return json.loads((ROOT / "schemas" / "api" / f"{contract}.samples.json").read_text(encoding="utf-8"))["valid"][0]


def sqs_message(body: dict, queue: str) -> dict:
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "bench", "eventSource": "aws:sqs", "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {}, "awsRegion": "ap-northeast-1",
        "eventSourceARN": f"arn:aws:sqs:ap-northeast-1:123456789012:{queue}"}]}


def rest_request(key: str, route: dict, world: World, user: str) -> dict:
    """A REST route's proxy event as API Gateway sends it past its checks: the dev API key, a verified
    end user where the route has the authorizer, the route's sample body, its required parameters."""
    from embedded.lambda_events import rest_proxy_event

    method, resource = key.split(" ", 1)
    headers = {"accept": "application/json", "user-agent": "bench"}
    if route.get("api_key_required", True):
        headers["x-api-key"] = world.api_key
    body = b""
    if route.get("request"):
        headers["content-type"] = "application/json"
        body = json.dumps(api_sample(route["request"]), ensure_ascii=False).encode()
    target = resource + ("?q=%E3%83%AF%E3%83%B3%E3%83%94%E3%83%BC%E3%82%B9" if any(
        p["name"] == "q" and p["in"] == "query" for p in route.get("parameters", [])) else "")
    authorizer = None
    if route.get("authorizer"):
        headers["authorization"] = f"Bearer {world.token(user)}"
        authorizer = world.authorized(user)
    return rest_proxy_event(method, resource, target, headers, body, {}, "127.0.0.1",
                            headers.get("x-api-key"), world.api_key_id if "x-api-key" in headers else None, authorizer)


def websocket_connect(world: World, user: str) -> dict:
    """$connect as the WebSocket API sends it after its authorizer allowed the handshake."""
    token = world.token(user)
    return {"headers": {"Host": "127.0.0.1", "Sec-WebSocket-Version": "13"},
            "queryStringParameters": {"api_key": world.api_key, "token": token}, "isBase64Encoded": False,
            "requestContext": {"routeKey": "$connect", "eventType": "CONNECT",
                               "connectionId": f"bench{uuid.uuid4().hex[:8]}=",
                               "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000),
                               "stage": "local", "apiId": "local", "domainName": "127.0.0.1",
                               "identity": {"apiKey": world.api_key, "apiKeyId": world.api_key_id,
                                            "sourceIp": "127.0.0.1"},
                               "authorizer": world.authorized(user)}}


def authorizer_request(wiring: dict, world: World, user: str) -> dict:
    """A REQUEST authorizer's event for a REST route it guards, with a valid token and the API key."""
    from embedded.rest_api import authorizer_event

    key = next(k for k, r in wiring["routes"].items() if r.get("authorizer") and r.get("request"))
    method, resource = key.split(" ", 1)
    headers = {"authorization": f"Bearer {world.token(user)}", "x-api-key": world.api_key,
               "content-type": "application/json"}
    arn = f"arn:aws:execute-api:ap-northeast-1:123456789012:local/local/{method}{resource}"
    return authorizer_event(arn, method, resource, resource, headers, None, None,
                            {"apiId": "local", "stage": "local", "resourcePath": resource, "httpMethod": method,
                             "accountId": "123456789012"})


def events_for(function: str, wiring: dict, credentials: dict, world: World) -> list[dict]:
    """Two events for ``function`` from its trigger in wiring.json, the second another piece of work."""
    from mangaassist_dev.signing import sign

    from embedded.lambda_events import function_url_event

    users = [f"reader-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    if function == "webhook_ingress":
        spec = credentials["sources"]["stripe"]
        template = json.loads((ROOT / "tests" / "events" / "stripe.checkout.session.completed.json").read_text())
        out = []
        for _ in range(2):
            body = json.dumps({**template, "id": f"evt_{uuid.uuid4().hex}"}).encode()
            headers = {k.lower(): v for k, v in sign(spec["scheme"], spec["secrets"], body).items()}
            out.append(function_url_event("POST", "/webhooks/stripe", {**headers, "content-type": "application/json"},
                                          body, "127.0.0.1"))
        return out
    if any(a["function"] == function for a in wiring.get("authorizers", {}).values()):
        return [authorizer_request(wiring, world, user) for user in users]
    if wiring.get("websocket", {}).get("function") == function:
        return [websocket_connect(world, user) for user in users]
    for key, route in wiring["routes"].items():
        if route["function"] == function:
            return [rest_request(key, route, world, user) for user in users]
    queues = {spec["function"]: name for name, spec in wiring["queues"].items()}
    if function in queues and queues[function] == "jobs":  # fed by POST /v1/generate: a queued job each
        request = api_sample("generate.request")
        return [sqs_message({"job_id": world.queued_job(request)}, "jobs") for _ in range(2)]
    if function in queues and queues[function] == "streams":  # fed by the websocket function's sendMessage
        out = []
        for user in users:
            connection_id, request_id = world.streaming_connection(user)
            message = {k: v for k, v in api_sample("ws.sendMessage.request").items() if k != "action"}
            out.append(sqs_message({"request_id": request_id, "connection_id": connection_id,
                                    "client_id": world.api_key_id, "user_id": user, "tier": "premium",
                                    "request": message}, "streams"))
        return out
    for rule in wiring["rules"].values():
        for target in rule["targets"].values():
            meant = next((m for m in rule["meant_for"] if m != "*"), "mangaassist.payments/PaymentCompleted")
            source, detail_type = meant.split("/")
            if target.get("function") == function:
                return [envelope(source, detail_type, sample_detail(source, detail_type)) for _ in range(2)]
            if wiring["queues"].get(target.get("queue"), {}).get("function") == function:
                return [sqs_message(envelope(source, detail_type, sample_detail(source, detail_type)),
                                    target["queue"]) for _ in range(2)]
    raise LookupError(f"wiring.json gives {function} no trigger: no event to invoke it with")


def failure(function: str, answers: list) -> str | None:
    """Why an answer is not the normal path's: an error status (4xx included: every event here is
    valid), a failed record, an authorizer's refusal."""
    for answer in answers:
        if isinstance(answer, dict) and int(answer.get("statusCode", 200)) >= 400:
            return f"{function} answered {answer['statusCode']}: {answer.get('body')}"
        if isinstance(answer, dict) and answer.get("batchItemFailures"):
            return f"{function} failed records: {answer['batchItemFailures']}"
        statements = (answer.get("policyDocument") or {}).get("Statement") if isinstance(answer, dict) else None
        if statements is not None and not all(st.get("Effect") == "Allow" for st in statements):
            return f"{function} did not allow: {statements}"
    return None


class Loopback:
    """What the stack's gateway serves the functions besides the API, on 127.0.0.1: the dev
    issuer's JWKS (the authorizer fetches it on its first token) and the WebSocket management API
    (the stream worker posts its frames there; they are accepted and dropped)."""

    def __init__(self, jwks: dict):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, data: bytes = b"") -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server's name)
                self._answer(200, body if self.path == "/.well-known/jwks.json" else b"{}")

            def do_POST(self):  # noqa: N802
                self._answer(200 if "/@connections/" in self.path else 404)

            def do_DELETE(self):  # noqa: N802
                self._answer(204)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def summary(answer) -> str:
    """What the first invocation answered, shortly: an HTTP status, or what a worker returned."""
    if isinstance(answer, dict) and "statusCode" in answer:
        return f"HTTP {answer['statusCode']}"
    return json.dumps(answer, default=str)[:60]


def measure(runs: int, data_dir: Path) -> dict:
    """Every function's samples against the local stack's emulator, provisioned as `make run` does."""
    import boto3
    from mangaassist_dev.routing import parse_wiring

    from embedded import dev_credentials
    from embedded.dev_identity import DevIdentity
    from embedded.emulator_process import EmulatorProcess
    from embedded.resources import ensure_flags_profile, ensure_resources
    from embedded.stack import ACCOUNT, FLAGS_FILE, REGION, Settings, Stack

    stack = Stack(Settings(port=0, data_dir=data_dir, time_scale=1.0, log_level="ERROR"))
    stack.wiring = parse_wiring(stack.wiring_doc)
    stack.credentials, _ = dev_credentials.load(data_dir / "dev-credentials.json", stack.wiring_doc.get("sources", {}))
    identity = DevIdentity(data_dir / "dev-jwt-key.pem")
    loopback = Loopback(identity.jwks())
    jwt = identity.description(loopback.base_url)
    emulator = EmulatorProcess(stack.bus_name, lambda events: None,
                               appconfig={**stack.names["appconfig"], "account": ACCOUNT, "region": REGION,
                                          "flags_file": str(FLAGS_FILE)}).start()
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **stack._environment(emulator.endpoint_url),
               "POWERTOOLS_LOG_LEVEL": "ERROR", "JWT_ISSUER": jwt["issuer"], "JWT_AUDIENCE": jwt["audience"],
               "JWT_JWKS_URL": jwt["jwks_url"], "WEBSOCKET_CALLBACK_URL": f"{loopback.base_url}/_aws/ws"}
        os.environ.update(env)
        aws = boto3.session.Session(region_name=REGION)
        ensure_resources(aws, stack.wiring_doc, stack.wiring, stack.names, stack.credentials, REGION, ACCOUNT)
        stack.names["appconfig"].update(ensure_flags_profile(aws, stack.names, data_dir / "appconfig-ids.json"))
        world = World(stack.credentials, jwt, stack.names)
        functions = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))
        specs = stack.wiring_doc["functions"]
        samples: dict[str, list[dict]] = {"boto3": [], **{f: [] for f in functions}}
        with tempfile.TemporaryDirectory() as scratch:

            def probe(name: str) -> dict:
                path = Path(scratch) / f"{name}.json"
                path.write_text(json.dumps(events_for(name, stack.wiring_doc, stack.credentials, world)))
                setup = {"name": name, "memory": specs[name].get("memory_size", 128), "events": str(path),
                         "paths": [str(ROOT / "functions" / name), str(LAYER)]}
                try:
                    sample = run_probe(HANDLER_PROBE, env, setup)
                except RuntimeError as exc:
                    raise RuntimeError(f"{name}'s cold start could not be measured: {exc}") from None
                problem = failure(name, sample["answers"])
                if problem:
                    raise RuntimeError(f"{name}'s invocations failed, so they did not take their normal path: "
                                       f"{problem}")
                return sample

            probe("catalog_indexer")  # the catalog the jobs, chat and search read: its sample product, indexed
            for _ in range(runs):  # interleaved, so the machine's noise hits every column alike
                samples["boto3"].append(run_probe(BASELINE_PROBE, env))
                for name in functions:
                    samples[name].append(probe(name))
        return {"endpoint": emulator.endpoint_url, "functions": functions, "samples": samples}
    finally:
        emulator.stop()
        loopback.stop()


def zip_sizes() -> dict:
    manifest_path = ROOT / "build" / "manifest.json"
    if not manifest_path.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build.py")], check=True, capture_output=True)
    return json.loads(manifest_path.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data:
        try:
            measured = measure(args.runs, Path(data))
            manifest = zip_sizes()
        except Exception as exc:  # whatever stops the measurement is reported, never hidden
            traceback.print_exc()
            print(f"bench_imports: CANNOT MEASURE: {type(exc).__name__}: {exc}", file=sys.stderr)
            return CANNOT_MEASURE
    samples = measured["samples"]
    base = statistics.median(s["baseline"] for s in samples["boto3"])
    # The earlier measure, for comparison: the handler's import alone against `import boto3` alone.
    import_base = statistics.median(s["import_boto3"] for s in samples["boto3"])
    rows = []
    for name in measured["functions"]:
        runs = samples[name]
        cold = statistics.median(s["import"] + s["first"] - s["second"] for s in runs)
        size = manifest["functions"].get(name, {}).get("size")
        own_lock = (ROOT / "functions" / name / "requirements.txt").is_file()  # its own packages: zip goal exempt
        rows.append({"function": name, "cold_ms": round(cold * 1000, 1),
                     "import_ms": round(statistics.median(s["import"] for s in runs) * 1000, 1),
                     "first_ms": round(statistics.median(s["first"] for s in runs) * 1000, 1),
                     "warm_ms": round(statistics.median(s["second"] for s in runs) * 1000, 1),
                     "ratio_to_boto3": round(cold / base, 2), "zip_bytes": size,
                     "import_ratio": round(statistics.median(s["import"] for s in runs) / import_base, 2),
                     "answer": summary(runs[0]["answers"][0]),
                     "zip_goal_exempt": own_lock,
                     "ok": cold / base <= RATIO_GOAL and (own_lock or (size or 0) <= FUNCTION_ZIP_GOAL)})
    layer_size = manifest["layers"]["shared"]["size"]
    result = {"aws_endpoint": f"{measured['endpoint']} (the local stack's moto emulator on loopback)",
              "baseline_ms": round(base * 1000, 1), "import_boto3_ms": round(import_base * 1000, 1),
              "functions": rows, "layer_zip_bytes": layer_size,
              "layer_ok": layer_size <= LAYER_ZIP_GOAL, "runs": args.runs}
    result["goal_met"] = result["layer_ok"] and all(r["ok"] for r in rows)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if result["goal_met"] else 1
    print(f"cold starts in fresh processes (median of {args.runs}); AWS calls go to {result['aws_endpoint']}")
    print(f"baseline, `import boto3` + one client: {result['baseline_ms']} ms (`import boto3` alone: "
          f"{result['import_boto3_ms']} ms)")
    print(f"{'function':<20}{'import':>8}{'/ b3 imp':>9}{'1st call':>9}{'warm':>7}{'cold':>8}{'/ base':>8}{'zip KB':>8}"
          f"  goal (cold / base <= {RATIO_GOAL}, <= 64 KB)")
    for r in rows:
        kb = f"{r['zip_bytes'] / 1024:.1f}" if r["zip_bytes"] is not None else "-"
        print(f"{r['function']:<20}{r['import_ms']:>8}{r['import_ratio']:>9}{r['first_ms']:>9}{r['warm_ms']:>7}{r['cold_ms']:>8}"
              f"{r['ratio_to_boto3']:>8}{kb:>8}  {'ok' if r['ok'] else 'MISSED'}"
              f"{' (own lock: zip goal exempt)' if r['zip_goal_exempt'] else ''}")
    print("(ms; cold = import + 1st call - warm call; `/ b3 imp`: the import alone / `import boto3` alone, the "
          "measure before cold starts were counted whole: not judged)")
    print(f"{'layer shared.zip':<20}{layer_size / 1024 / 1024:>47.1f}M  {'ok' if result['layer_ok'] else 'MISSED'} "
          "(<= 25 MB)")
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
