#!/usr/bin/env python3
"""Chat overhead: a /v1/chat turn's latency divided by the I/O it cannot avoid, made directly
against the same emulator in the same run. Goal: <= 1.3.

The necessary I/O of a turn on a session with history: the session's read (GetItem, consistent),
the vector search for the message (embedding + the index's query), the model call, the session's
conditional write (PutItem), and PutEvents of MessageReceived + InferenceCompleted. The model is
the offline provider with a fixed latency (``--model-ms``), the same object on both sides, so the
ratio is the handler's own cost (routing, validation, prompt, retrieval glue, the REST resolver,
logging) over real work. Two ratios:

- the client's: until the answer (the events go after it, deferred by mangaassist.after_response)
  against the I/O on the answer's path (everything but PutEvents);
- the invocation's: answer plus deferred publishing against all of it.

``--shadow``: the feature flags (config/flags.json, as AppConfig would serve it) send every turn to
the shadow model too, after the answer. The client's ratio must still be <= 1.3 (the shadow call
never adds to the client's latency); the invocation's then includes the shadow call and is
reported, not judged, and the comparisons published are counted.

The emulator is the local stack's (moto in its own process), reached through the in-process
transport the stack's functions use, and over its HTTP port as an SDK reaches AWS.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOAL = 1.3
PREFIX = "bench"


class Context:
    function_name, aws_request_id, memory_limit_in_mb = "bench-chat", "bench", 1024
    invoked_function_arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:bench-chat"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


def environment(endpoint: str, data_dir: str, model_ms: int) -> dict:
    wiring = json.loads((ROOT / "terraform" / "wiring.json").read_text())
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "ap-northeast-1", "AWS_REGION": "ap-northeast-1", "BUILD_VERSION": "bench",
           "EVENT_BUS_NAME": f"{PREFIX}-bus", "MODEL_PROVIDER": "local", "MODEL_FAST_ID": "local.fast-v1",
           "MODEL_FALLBACK_ID": "local.deep-v1", "LOCAL_MODEL_LATENCY_MS": str(model_ms),
           "LOCAL_MODEL_TOKENS_PER_SECOND": "0", "EMBEDDINGS_PROVIDER": "local",
           "EMBEDDINGS_MODEL_ID": "local.hashed-ngrams-v1", "EMBEDDINGS_DIMENSION": "256", "VECTOR_STORE": "local",
           "VECTOR_INDEX": "products", "LOCAL_DATA_DIR": data_dir, "POWERTOOLS_LOG_LEVEL": "ERROR",
           "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_SERVICE_NAME": "mangaassist"}
    env.update({f"{t.upper()}_TABLE": f"{PREFIX}-{t}" for t in wiring["tables"]})
    return env


def setup(products: int) -> None:
    import boto3
    from mangaassist_dev.tables import create_tables

    from mangaassist.deps import Deps
    from mangaassist.workers.catalog import index_product

    wiring = json.loads((ROOT / "terraform" / "wiring.json").read_text())
    create_tables(boto3.client("dynamodb"), {t: f"{PREFIX}-{t}" for t in wiring["tables"]}, wiring["tables"])
    boto3.client("events").create_event_bus(Name=f"{PREFIX}-bus")
    sample = json.loads((ROOT / "schemas/events/mangaassist.catalog/CatalogUpdate.new_release.samples.json")
                        .read_text())["valid"][0]
    deps = Deps()
    for i in range(products):
        detail = {**sample["detail"], "product_id": f"bk-bench-{i}", "title": f"ベンチの巻 {i} volume {i}",
                  "revision": 1}
        index_product({**sample, "id": f"evt-{i}", "detail": detail}, deps)


def serve_flags(shadow_everything: bool) -> dict:
    """config/flags.json as AppConfig would serve it (with chat's shadow model at 100% of turns if
    asked), read through the functions' own FlagBook; counts the shadow comparisons made."""
    from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
    from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider

    from mangaassist.flags import decisions, shadow
    from mangaassist.flags.store import LastGoodStore

    document = json.loads((ROOT / "config" / "flags.json").read_text())
    if shadow_everything:
        document["chat_shadow_model"] = {"default": "fallback", "boolean_type": False}

    class Served(StoreProvider):
        def get_configuration(self):
            return json.loads(json.dumps(document))

        @property
        def get_raw_configuration(self):
            return self.get_configuration()

    book = decisions.FlagBook(FeatureFlags(store=LastGoodStore(Served())), fast_id="local.fast-v1",
                              fallback_id="local.deep-v1", candidate_id=None)
    decisions.flag_book = lambda: book
    counted = {"comparisons": 0}
    compare = shadow.compare

    def counting(*args, **kwargs):
        counted["comparisons"] += 1
        return compare(*args, **kwargs)

    shadow.compare = counting
    return counted


def measure(requests: int, shadowed: bool = False) -> dict:
    import boto3

    from mangaassist import after_response, clients, settings
    from mangaassist.chat import grounding
    from mangaassist.chat import service as chat_module
    from mangaassist.deps import Deps
    from mangaassist.events.publisher import Event, publish

    boto3.DEFAULT_SESSION = None  # clients made now reach the emulator as the process is set up now
    clients.reset()
    settings.reload()
    chat_module.chat_service.cache_clear()
    spec = __import__("importlib.util").util.spec_from_file_location("bench_chat_handler",
                                                                     ROOT / "functions" / "chat" / "handler.py")
    module = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.lambda_handler
    event = json.loads((ROOT / "tests" / "events" / "apiGatewayProxyEvent.json").read_text())
    service = chat_module.chat_service()
    deps = Deps()  # the direct side's own clients, made the same way
    table = deps.table("sessions")
    provider = service.providers("local.fast-v1")  # the model the turn's flags choose

    def turn(session_id: str | None) -> tuple[dict, float, float]:
        request = {"message": "ベンチの巻の最新刊はどれ？"} | ({"session_id": session_id} if session_id else {})
        later = after_response.Later()
        start = time.perf_counter()
        with later:
            response = handler({**event, "body": json.dumps(request, ensure_ascii=False)}, Context())
        answered = time.perf_counter() - start
        later.run()
        assert response["statusCode"] == 200, response
        return json.loads(response["body"]), answered, time.perf_counter() - start

    def direct(session_id: str) -> tuple[float, float]:
        message = "ベンチの巻の最新刊はどれ？"
        start = time.perf_counter()
        item = table.get_item(Key={"session_id": session_id}, ConsistentRead=True)["Item"]
        vector = deps.embedder.embed([message])[0]
        found = grounding.products(deps.store.query(vector, k=grounding.TOP_K, filters={"status": "active"}))
        completion = provider.converse([{"role": "user", "content": [{"text": message}]}],
                                               system=grounding.system_prompt(found, "ja"), feature="chat")
        table.put_item(Item={**item, "version": item["version"] + 1}, ConditionExpression="version = :v",
                       ExpressionAttributeValues={":v": item["version"]})
        on_path = time.perf_counter() - start
        publish([Event("mangaassist.chat", "MessageReceived", {"version": "1", "session_id": session_id,
                                                               "message_id": uuid.uuid4().hex, "text": message,
                                                               "channel": "rest"}),
                 Event("mangaassist.ai", "InferenceCompleted", {
                     "version": "1", "request_id": uuid.uuid4().hex, "feature": "chat",
                     "model_id": completion.model_id, "provider": "local", "input_tokens": completion.input_tokens,
                     "output_tokens": completion.output_tokens, "latency_ms": completion.latency_ms,
                     "estimated_cost_usd": 0.0, "stop_reason": "end_turn", "fallback_used": False})])
        return on_path, time.perf_counter() - start

    first, _, _ = turn(None)
    session_id = first["session_id"]
    for _ in range(10):  # warm both paths
        turn(session_id), direct(session_id)
    answers, invocations, on_path, whole = [], [], [], []
    for _ in range(requests):
        _, answered, ended = turn(session_id)
        answers.append(answered)
        invocations.append(ended)
        path, total = direct(session_id)
        on_path.append(path)
        whole.append(total)
    a, i = statistics.median(answers), statistics.median(invocations)
    p, w = statistics.median(on_path), statistics.median(whole)
    return {"answer_p50_ms": round(a * 1000, 1), "answer_p99_ms": round(sorted(answers)[int(len(answers) * .99) - 1]
                                                                        * 1000, 1),
            "necessary_io_p50_ms": round(p * 1000, 1), "ratio": round(a / p, 3),
            "invocation_p50_ms": round(i * 1000, 1), "all_io_p50_ms": round(w * 1000, 1),
            "invocation_ratio": round(i / w, 3), "goal_met": a / p <= GOAL and (shadowed or i / w <= GOAL)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--model-ms", type=int, default=100, help="the offline model's fixed latency")
    parser.add_argument("--shadow", action="store_true", help="every turn also answered by the shadow model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from embedded.emulator_process import EmulatorProcess

    emulator = EmulatorProcess(f"{PREFIX}-bus", lambda events: None).start()
    result: dict = {"requests": args.requests, "products": args.products, "model_ms": args.model_ms, "goal": GOAL}
    with tempfile.TemporaryDirectory() as data:
        os.environ.update(environment(emulator.endpoint_url, data, args.model_ms))
        try:
            setup(args.products)
            counted = serve_flags(args.shadow)
            result["in_process"] = measure(args.requests, args.shadow)
            emulator.stop_in_process()
            result["over_port"] = measure(args.requests, args.shadow)
            result["shadow_comparisons"] = counted["comparisons"]
        finally:
            emulator.stop()
    ok = result["in_process"]["goal_met"] and result["over_port"]["goal_met"]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    print(f"{args.requests} chat turns on one session, {args.products} products indexed, the model a fixed "
          f"{args.model_ms} ms" + (f"; shadow at 100%: {result['shadow_comparisons']} comparisons published "
                                   "(the invocation's ratio includes them, not judged)" if args.shadow else ""))
    for way, how in (("in_process", "in-process transport (the local stack's functions)"),
                     ("over_port", "over the emulator's HTTP port (as an SDK reaches AWS)")):
        r = result[way]
        print(f"  {how}: answer p50 {r['answer_p50_ms']} ms (p99 {r['answer_p99_ms']} ms) / necessary I/O "
              f"{r['necessary_io_p50_ms']} ms = {r['ratio']}; invocation {r['invocation_p50_ms']} ms / all I/O "
              f"{r['all_io_p50_ms']} ms = {r['invocation_ratio']} (goal <= {GOAL}): "
              f"{'met' if r['goal_met'] else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
