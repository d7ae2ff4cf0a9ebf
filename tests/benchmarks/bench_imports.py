#!/usr/bin/env python3
"""Cold-start cost: fresh-process import time of each handler vs a fresh-process `import boto3`.

Every function imports boto3 anyway, so the ratio says how much the rest of the import (the
shared layer, Powertools, contracts) adds to a cold start. Goal: <= 1.5. Also reports the zip
sizes from build/manifest.json (goal: function zips <= 64 KB, layer <= 25 MB). A function with
its own hashed lock (functions/<name>/requirements.txt, e.g. the authorizer's PyJWT and
cryptography) ships those packages in its zip to keep them out of the shared layer: its zip is
reported but exempt from the 64 KB goal.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared" / "python"
RATIO_GOAL, FUNCTION_ZIP_GOAL, LAYER_ZIP_GOAL = 1.5, 64 * 1024, 25 * 1024 * 1024

PROBE = (
    "import sys, time; sys.path[:0] = {paths!r}; t = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - t)"
)


def import_seconds(module: str, paths: list[str], env: dict) -> float:
    code = PROBE.format(paths=paths, module=module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    # What a Lambda environment has set; the handlers read these at import.
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "ap-northeast-1", "AWS_REGION": "ap-northeast-1",
           "POWERTOOLS_SERVICE_NAME": "mangaassist", "EVENT_BUS_NAME": "bench", "BUILD_VERSION": "bench"}
    functions = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))
    samples: dict[str, list[float]] = {"boto3": [], **{f: [] for f in functions}}
    for _ in range(args.runs):  # interleaved so machine noise hits every column alike
        samples["boto3"].append(import_seconds("boto3", [], env))
        for name in functions:
            samples[name].append(import_seconds("handler", [str(ROOT / "functions" / name), str(LAYER)], env))
    base = statistics.median(samples["boto3"])

    manifest_path = ROOT / "build" / "manifest.json"
    if not manifest_path.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build.py")], check=True, capture_output=True)
    manifest = json.loads(manifest_path.read_text())

    rows = []
    for name in functions:
        median = statistics.median(samples[name])
        size = manifest["functions"].get(name, {}).get("size")
        own_lock = (ROOT / "functions" / name / "requirements.txt").is_file()  # exempt from the zip goal
        zip_ok = own_lock or (size or 0) <= FUNCTION_ZIP_GOAL
        rows.append({"function": name, "import_ms": round(median * 1000, 1), "ratio_to_boto3": round(median / base, 2),
                     "zip_bytes": size, "zip_goal_exempt": own_lock, "ok": median / base <= RATIO_GOAL and zip_ok})
    layer_size = manifest["layers"]["shared"]["size"]
    result = {"boto3_import_ms": round(base * 1000, 1), "functions": rows, "layer_zip_bytes": layer_size,
              "layer_ok": layer_size <= LAYER_ZIP_GOAL}
    result["goal_met"] = result["layer_ok"] and all(r["ok"] for r in rows)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if result["goal_met"] else 1
    print(f"fresh-process `import boto3`: {result['boto3_import_ms']} ms (median of {args.runs})")
    print(f"{'function':<22}{'import ms':>10}{'/ boto3':>9}{'zip KB':>9}  goal (<= {RATIO_GOAL}, <= 64 KB)")
    for r in rows:
        kb = f"{r['zip_bytes'] / 1024:.1f}" if r["zip_bytes"] is not None else "-"
        exempt = " (own lock: zip goal exempt)" if r["zip_goal_exempt"] else ""
        print(f"{r['function']:<22}{r['import_ms']:>10}{r['ratio_to_boto3']:>9}{kb:>9}  "
              f"{'ok' if r['ok'] else 'MISSED'}{exempt}")
    print(f"{'layer shared.zip':<22}{'':>10}{'':>9}{layer_size / 1024 / 1024:>8.1f}M  "
          f"{'ok' if result['layer_ok'] else 'MISSED'} (<= 25 MB)")
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
