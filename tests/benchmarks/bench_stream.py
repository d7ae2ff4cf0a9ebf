#!/usr/bin/env python3
"""Streaming over WebSocket on the local stack: batched frames against per-token streaming.

Starts `scripts/local_stack.py` on a free port (the local model paced at --tokens-per-second),
indexes a few products so answers are grounded and several lines long, warms the functions with
one answer, then opens --connections WebSocket connections at once (aiohttp's client, API key in
the query string), each sending one sendMessage, and reads every frame until its end frame.

Goals (issue #19):
- frames: an answer's tokens / its delta frames >= 10 (per-token streaming sends one message a
  token), over all answers;
- first text: the first delta frame <= 100 ms after the start frame, which the worker sends on the
  model's first token (p99);
- gaps between consecutive frames of an answer (start, deltas, end) p99 <= 150 ms;
- every answer complete: start, deltas with seq 1..n, end; nothing lost or reordered.

Reported too: the request -> start frame latency (queueing, session, retrieval, the model's first
token: the stream worker's queue has 5 pollers locally, so 50 turns wait in turns).
A run that cannot measure (the stack does not start, no answer arrives) says so and exits 2;
a missed goal exits 1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "layers" / "shared" / "python"), str(ROOT / "scripts"), str(ROOT / "tests")]

from e2e.conftest import start_stack, stop_stack  # noqa: E402
from mangaassist_dev.signing import sign  # noqa: E402

CANNOT_MEASURE = 2
GOALS = {"tokens_per_frame": 10.0, "first_text_p99_ms": 100.0, "gap_p99_ms": 150.0}
QUESTIONS = ["フリーレンの新刊はいつ？", "ダンダダンの最新刊の値段は？", "What fantasy manga came out this month?",
             "おすすめのアクション漫画は？", "Which volume of Kaiju No. 8 is newest?"]
PRODUCTS = [
    ("bk-frieren-14", "葬送のフリーレン 14", "山田鐘人", "Frieren's journey north goes on through snow and memories."),
    ("bk-dandadan-20", "ダンダダン 20", "龍幸伸", "Ghosts, aliens and a lost crotch: the chase goes on."),
    ("bk-kaiju-16", "怪獣8号 16", "松本直也", "The Defense Force faces its strongest kaiju yet."),
    ("bk-spyfamily-15", "SPY×FAMILY 15", "遠藤達哉", "Loid's mission and Anya's school life collide again."),
    ("bk-onepiece-111", "ONE PIECE 111", "尾田栄一郎", "The crew sails toward the final island and its secrets."),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def seed_catalog(stack) -> None:
    """The products, through the catalog webhook and its indexer, as a publisher sends them."""
    items = [{"id": pid, "title": title, "author": author, "synopsis": synopsis, "genres": ["fantasy", "action"],
              "price": 594, "currency": "JPY", "release_date": "2026-12-18", "volume": 1, "publisher": "集英社"}
             for pid, title, author, synopsis in PRODUCTS]
    body = json.dumps({"batch_id": f"batch_{uuid.uuid4().hex[:8]}", "type": "new_release", "items": items},
                      ensure_ascii=False).encode()
    source = stack.info["sources"]["catalog"]
    status, _, answer = stack.json("POST", "/webhooks/catalog", body,
                                   {"content-type": "application/json", **sign(source["scheme"], source["secrets"],
                                                                               body)})
    if status != 202:
        raise RuntimeError(f"the catalog webhook answered {status}: {answer}")
    stack.wait_for(lambda rs: len([r for r in rs if r["event_id"] in answer["events"]
                                   and r["target"] == "catalog_indexer" and r["status"] == "delivered"])
                   == len(answer["events"]), what="indexing")


async def one_answer(session, url: str, message: str, timeout: float) -> dict:
    """One connection, one question: every frame with its arrival time (seconds after the send)."""
    import aiohttp

    try:
        async with session.ws_connect(url) as ws:
            sent = time.perf_counter()
            await ws.send_json({"action": "sendMessage", "message": message})
            frames = []
            while True:
                frame = await ws.receive_json(timeout=timeout)
                frames.append((time.perf_counter() - sent, frame))
                if frame.get("type") in ("end", "error"):
                    return {"frames": frames}
    except (TimeoutError, aiohttp.ClientError, ValueError, TypeError) as exc:
        return {"frames": [], "failure": f"{type(exc).__name__}: {exc}"}


def judge(answer: dict) -> dict:
    """One answer's numbers, and what was wrong with it."""
    frames = answer["frames"]
    kinds = [f["type"] for _, f in frames]
    problems = [answer["failure"]] if "failure" in answer else []
    if not frames or kinds[0] != "start" or kinds[-1] != "end":
        problems.append(f"frames {kinds[:3]}...{kinds[-2:]}" if frames else "no frame")
        return {"problems": problems}
    deltas = [(t, f) for t, f in frames if f["type"] == "delta"]
    if [f["seq"] for _, f in deltas] != list(range(1, len(deltas) + 1)) or kinds[1:-1] != ["delta"] * len(deltas):
        problems.append("lost or reordered frames")
    end = frames[-1][1]
    if end.get("frames") != len(deltas):
        problems.append(f"{len(deltas)} deltas received, the end frame says {end.get('frames')} were sent")
    times = [t for t, _ in frames]
    return {"problems": problems, "tokens": int(end.get("tokens") or 0), "deltas": len(deltas),
            "to_start_ms": times[0] * 1000, "first_text_ms": (deltas[0][0] - times[0]) * 1000 if deltas else None,
            "gaps_ms": [(b - a) * 1000 for a, b in zip(times, times[1:])], "total_ms": times[-1] * 1000}


async def run_connections(url: str, connections: int, timeout: float) -> tuple[list[dict], float]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        answers = await asyncio.gather(*(one_answer(session, url, QUESTIONS[i % len(QUESTIONS)], timeout)
                                         for i in range(connections)))
        return answers, time.perf_counter() - started


def measure(stack, connections: int, timeout: float) -> dict:
    url = f"{stack.info['websocket_url']}?api_key={stack.info['api_key']}"
    seed_catalog(stack)
    warm = judge(asyncio.run(one_answer_alone(url, timeout)))
    answers, seconds = asyncio.run(run_connections(url, connections, timeout))
    judged = [judge(a) for a in answers]
    complete = [j for j in judged if not j["problems"]]
    tokens, deltas = sum(j["tokens"] for j in complete), sum(j["deltas"] for j in complete)
    first_text = [j["first_text_ms"] for j in complete if j["first_text_ms"] is not None]
    gaps = [g for j in complete for g in j["gaps_ms"]]
    result = {
        "connections": connections, "complete": len(complete), "seconds": round(seconds, 2),
        "warm_up_problems": warm["problems"],
        "problems": sorted({p for j in judged for p in j["problems"]}),
        "tokens": tokens, "delta_frames": deltas,
        "tokens_per_frame": round(tokens / deltas, 2) if deltas else None,
        "tokens_per_answer_p50": percentile([j["tokens"] for j in complete], 0.5),
        "frames_per_answer_p50": percentile([j["deltas"] for j in complete], 0.5),
        "to_start_p50_ms": round(percentile([j["to_start_ms"] for j in complete], 0.5), 1),
        "to_start_p99_ms": round(percentile([j["to_start_ms"] for j in complete], 0.99), 1),
        "first_text_p50_ms": round(percentile(first_text, 0.5), 1),
        "first_text_p99_ms": round(percentile(first_text, 0.99), 1),
        "gap_p50_ms": round(percentile(gaps, 0.5), 1), "gap_p99_ms": round(percentile(gaps, 0.99), 1),
        "gap_max_ms": round(max(gaps), 1) if gaps else None,
        "answer_p99_ms": round(percentile([j["total_ms"] for j in complete], 0.99), 1),
    }
    result["goals"] = {
        "tokens_per_frame": (result["tokens_per_frame"] or 0) >= GOALS["tokens_per_frame"],
        "first_text_p99_ms": result["first_text_p99_ms"] <= GOALS["first_text_p99_ms"],
        "gap_p99_ms": result["gap_p99_ms"] <= GOALS["gap_p99_ms"],
        "every_answer_complete": len(complete) == connections,
    }
    result["goal_met"] = all(result["goals"].values())
    return result


async def one_answer_alone(url: str, timeout: float) -> dict:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        return await one_answer(session, url, QUESTIONS[0], timeout)


def print_table(result: dict, tokens_per_second: float) -> None:
    met = result["goals"]
    rows = [
        ("answers complete (start, seq 1..n, end)", f"{result['complete']} / {result['connections']}",
         "all", met["every_answer_complete"]),
        ("tokens / delta frames", f"{result['tokens_per_frame']} ({result['tokens']} / {result['delta_frames']})",
         f">= {GOALS['tokens_per_frame']:g}", met["tokens_per_frame"]),
        ("first text after start frame p50 / p99", f"{result['first_text_p50_ms']} / {result['first_text_p99_ms']} ms",
         f"p99 <= {GOALS['first_text_p99_ms']:g} ms", met["first_text_p99_ms"]),
        ("gap between frames p50 / p99 / max",
         f"{result['gap_p50_ms']} / {result['gap_p99_ms']} / {result['gap_max_ms']} ms",
         f"p99 <= {GOALS['gap_p99_ms']:g} ms", met["gap_p99_ms"]),
        ("request -> start frame p50 / p99", f"{result['to_start_p50_ms']} / {result['to_start_p99_ms']} ms", "-",
         None),
        ("answer p99 (request -> end)", f"{result['answer_p99_ms']} ms", "-", None),
        ("per answer p50: tokens, frames", f"{result['tokens_per_answer_p50']}, {result['frames_per_answer_p50']}",
         "-", None),
    ]
    print(f"{result['connections']} WebSocket connections at once, one answer each, the local model at "
          f"{tokens_per_second:g} tokens/s; {result['seconds']} s in all")
    width = max(len(r[0]) for r in rows)
    print(f"  {'measure':<{width}}  {'measured':<34} {'goal':<16} ")
    for name, value, goal, ok in rows:
        print(f"  {name:<{width}}  {value:<34} {goal:<16} {'' if ok is None else 'met' if ok else 'MISSED'}")
    for problem in result["problems"]:
        print(f"  problem: {problem}")
    print("goal " + ("met" if result["goal_met"] else "MISSED"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--tokens-per-second", type=float, default=150.0,
                        help="the local model's pace (LOCAL_MODEL_TOKENS_PER_SECOND; the stack's default is 150)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for any one frame")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data:
        try:
            stack = start_stack(Path(data), {"POWERTOOLS_LOG_LEVEL": "ERROR",
                                             "LOCAL_MODEL_TOKENS_PER_SECOND": f"{args.tokens_per_second:g}"})
        except Exception as exc:
            print(f"bench_stream: CANNOT MEASURE: the local stack did not start: {exc}", file=sys.stderr)
            return CANNOT_MEASURE
        try:
            result = measure(stack, args.connections, args.timeout)
        except Exception as exc:
            print(f"bench_stream: CANNOT MEASURE: {type(exc).__name__}: {exc}", file=sys.stderr)
            return CANNOT_MEASURE
        finally:
            stop_stack(stack)
    result["tokens_per_second"] = args.tokens_per_second
    if not result["complete"]:
        print(f"bench_stream: CANNOT MEASURE: no answer arrived complete ({result['problems']})", file=sys.stderr)
        return CANNOT_MEASURE
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print_table(result, args.tokens_per_second)
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
