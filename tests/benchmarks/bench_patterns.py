#!/usr/bin/env python3
"""Pattern matching throughput: our compiled patterns vs moto's matcher, on the same corpus.

Both matchers compile every pattern of ../shared/conformance/eventbridge/patterns.json once; the
timed loops only match, over the same (pattern, event) pairs. Repetitions alternate between the two
matchers, so that load on the machine hits both alike, and each reports its best repetition.
Cases on which moto raises count as wrong answers for moto and are left out of both timings.
Goal: ours >= 3x moto's matches per second, with every answer right.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "layers" / "shared" / "python"))
CORPUS = ROOT.parent / "shared" / "conformance" / "eventbridge" / "patterns.json"

from mangaassist.events.patterns import compile_pattern  # noqa: E402


def load_cases() -> list[dict]:
    if not CORPUS.is_file():
        sys.exit(f"conformance data missing: {CORPUS}")
    return json.loads(CORPUS.read_text())


def matches_per_second(pairs: list, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for match, event in pairs:
            match(event)
    return rounds * len(pairs) / (time.perf_counter() - start)


def run(repetitions: int, rounds: int) -> dict:
    from moto.events.models import EventPattern

    cases = load_cases()
    ours, theirs = [], []
    ours_right = moto_right = moto_raised = 0
    for case in cases:
        text = case.get("pattern_json") or json.dumps(case["pattern"])
        event = json.loads(case["event_json"], parse_float=Decimal) if case.get("event_json") else case["event"]
        match = compile_pattern(text)
        ours_right += match(event) is case["matches"]
        try:
            moto = EventPattern.load(text)
            moto_answer = moto.matches_event(event)
        except Exception:  # noqa: BLE001 - any failure of moto's is a wrong answer
            moto_raised += 1
            continue
        moto_right += moto_answer == case["matches"]
        ours.append((match, event))
        theirs.append((moto.matches_event, event))
    ours_rates, moto_rates = [], []
    for _ in range(repetitions):
        ours_rates.append(matches_per_second(ours, rounds))
        moto_rates.append(matches_per_second(theirs, rounds))
    result = {
        "corpus": CORPUS.name,
        "cases": len(cases),
        "timed_cases": len(ours),
        "moto_raised": moto_raised,
        "repetitions": repetitions,
        "ours_correct_pct": round(100 * ours_right / len(cases), 1),
        "moto_correct_pct": round(100 * moto_right / len(cases), 1),
        "ours_matches_per_s": round(max(ours_rates)),
        "moto_matches_per_s": round(max(moto_rates)),
    }
    result["speedup"] = round(result["ours_matches_per_s"] / result["moto_matches_per_s"], 2)
    result["goal_met"] = result["speedup"] >= 3 and result["ours_correct_pct"] == 100.0
    return result


def table(result: dict) -> str:
    lines = [
        f"corpus {result['corpus']}: {result['cases']} cases, {result['timed_cases']} timed "
        f"(moto raised on {result['moto_raised']}); best of {result['repetitions']} alternating repetitions",
        f"{'matcher':<14}{'correct':>9}{'matches/s':>14}",
        f"{'mangaassist':<14}{result['ours_correct_pct']:>8}%{result['ours_matches_per_s']:>14,}",
        f"{'moto 5.2.5':<14}{result['moto_correct_pct']:>8}%{result['moto_matches_per_s']:>14,}",
        f"speedup {result['speedup']}x (goal >= 3x with 100% correct): {'met' if result['goal_met'] else 'MISSED'}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=7, help="alternating timed runs per matcher")
    parser.add_argument("--rounds", type=int, default=10, help="passes over the corpus per timed run")
    parser.add_argument("--json", action="store_true", help="print the results as a JSON object")
    args = parser.parse_args()
    result = run(args.repetitions, args.rounds)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
