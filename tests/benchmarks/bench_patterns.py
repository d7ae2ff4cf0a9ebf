#!/usr/bin/env python3
"""Pattern matching: our compiled patterns vs moto's matcher, side by side on the same corpus.

Both precompile every pattern once; the timed loops only match. Goal: ours >= 3x moto's
throughput, with 100% of the curated corpus right (moto: 97.4% per the corpus README).
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


def raw(case, key):
    text = case.get(f"{key}_json")
    return json.loads(text, parse_float=Decimal) if text else case[key]


def rate(pairs, rounds: int) -> float:
    """Matches per second over ``rounds`` passes of (matcher, event) pairs (best of 3)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            for match, event in pairs:
                match(event)
        best = min(best, time.perf_counter() - start)
    return rounds * len(pairs) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from moto.events.models import EventPattern

    cases = json.loads(CORPUS.read_text())
    ours, theirs, ours_right, moto_right = [], [], 0, 0
    for case in cases:
        pattern, event = raw(case, "pattern"), raw(case, "event")
        match = compile_pattern(pattern)
        ours_right += match(event) == case["matches"]
        try:
            moto = EventPattern.load(json.dumps(case["pattern"]))
            answer = moto.matches_event(case["event"])
        except Exception:  # moto raising is a wrong answer, and leaves the case out of both timings
            continue
        moto_right += answer == case["matches"]
        ours.append((match, event))
        theirs.append((moto.matches_event, case["event"]))
    result = {
        "cases": len(cases),
        "timed_cases": len(ours),
        "ours_correct_pct": round(100 * ours_right / len(cases), 1),
        "moto_correct_pct": round(100 * moto_right / len(cases), 1),
        "ours_matches_per_s": round(rate(ours, args.rounds)),
        "moto_matches_per_s": round(rate(theirs, args.rounds)),
    }
    result["speedup"] = round(result["ours_matches_per_s"] / result["moto_matches_per_s"], 2)
    result["goal_met"] = result["speedup"] >= 3 and result["ours_correct_pct"] == 100.0
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"corpus: {CORPUS.name}, {result['cases']} cases ({result['timed_cases']} timed: those moto does not raise on)")
    print(f"{'matcher':<14}{'correct':>9}{'matches/s':>14}")
    print(f"{'mangaassist':<14}{result['ours_correct_pct']:>8}%{result['ours_matches_per_s']:>14,}")
    print(f"{'moto 5.2.5':<14}{result['moto_correct_pct']:>8}%{result['moto_matches_per_s']:>14,}")
    print(f"speedup {result['speedup']}x (goal >= 3x): {'met' if result['goal_met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
