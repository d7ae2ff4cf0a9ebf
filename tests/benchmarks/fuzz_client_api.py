"""schemathesis against a local stack, from the OpenAPI document the stack serves.

Each operation gets ``--examples`` generated requests that fit its schema and as many that do not
(issue 17 asks for at least 1,000 each), derandomized (the same requests on every run for the
same document), sent with the dev API key, and every answer must be no 5xx, documented (status
code and content type) and conform to its response schema. The e2e suite
(tests/e2e/test_client_api_http.py) runs a few examples per operation; this script runs the full count,
on a stack of its own with a usage plan large enough never to answer 429:

    .venv/bin/python tests/benchmarks/fuzz_client_api.py [--examples 1000] [--operation "POST /v1/chat"]

Not part of `make bench` (it takes minutes per operation on two cores); it exits 1 when any
operation failed a check.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "layers" / "shared" / "python", ROOT / "scripts", ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

MAX_FAILURES_KEPT = 10  # per operation: the first distinct ones say enough


def checks() -> list:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def fuzz_operation(info: dict, method: str, path: str, *, examples: int, key: str = "dev") -> tuple[list[str], int]:
    """Up to ``examples`` generated requests that fit the schema and as many that do not, to one
    operation of the stack described by ``info`` (stack.json): each failed check as one line (at
    most MAX_FAILURES_KEPT distinct ones), and how many requests were sent (fewer when Hypothesis
    runs out of distinct inputs, as for an operation without parameters)."""
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    schema = schemathesis.openapi.from_url(info["openapi_url"])
    operation = schema[path][method]
    session = requests.Session()
    headers = {"x-api-key": info["api_keys"][key]}
    failures: list[str] = []
    sent = [0]
    active = checks()

    def runner(mode):
        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            print_blob=False,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            response = case.call(base_url=info["base_url"], session=session, headers=headers, timeout=30)
            sent[0] += 1
            try:
                case.validate_response(response, checks=active, headers=headers)
            except AssertionError as exc:  # schemathesis' failure group: one line per distinct failure
                line = f"{method} {path} ({mode.value}): {response.status_code} {' '.join(str(exc).split())[:400]}"
                if line not in failures and len(failures) < MAX_FAILURES_KEPT:
                    failures.append(line)

        return run

    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        try:
            runner(mode)()
        except Unsatisfiable:  # nothing to get wrong: an operation without parameters or body (GET /health)
            if mode is schemathesis.GenerationMode.POSITIVE:
                raise
    return failures, sent[0]


def main(argv: list[str] | None = None) -> int:
    from e2e.conftest import start_stack, stop_stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="generated requests per operation (default 1000)")
    parser.add_argument("--operation", action="append", help='only these, e.g. "POST /v1/chat" (repeatable)')
    args = parser.parse_args(argv)
    document = json.loads((ROOT / "schemas" / "api" / "openapi.json").read_text())
    operations = [(m.upper(), p) for p, ops in document["paths"].items() for m in ops]
    if args.operation:
        operations = [op for op in operations if f"{op[0]} {op[1]}" in args.operation]
    failed = 0
    with tempfile.TemporaryDirectory() as data:
        stack = start_stack(
            Path(data),
            {
                "USAGE_PLAN_RATE": "100000",
                "USAGE_PLAN_BURST": "100000",
                "USAGE_PLAN_DAILY_QUOTA": "100000000",
                "LOCAL_MODEL_TOKENS_PER_SECOND": "0",
            },
        )
        try:
            print(f"{'operation':<36}{'requests':>10}{'seconds':>10}  result")
            for method, path in operations:
                started = time.monotonic()
                failures, sent = fuzz_operation(stack.info, method, path, examples=args.examples)
                took = time.monotonic() - started
                failed += bool(failures)
                print(
                    f"{method + ' ' + path:<36}{sent:>10}{took:>10.1f}  "
                    f"{'ok' if not failures else f'{len(failures)} failure(s)'}",
                    flush=True,
                )
                for line in failures:
                    print(f"    {line}")
        finally:
            stop_stack(stack)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
