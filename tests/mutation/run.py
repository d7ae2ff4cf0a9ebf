"""make mutation: mutmut on the modules listed in pyproject.toml's [tool.mutmut], kill rate per module.

mutmut names a mutant after its file's path (``mangaassist/webhooks/signatures.py`` ->
``mangaassist.webhooks.signatures.x_verify__mutmut_3``) and its trampoline switches on the module's
``__name__``, so the two must agree: the packages have to sit at the top of the tree mutmut runs
in. This script lays that tree out in build/mutation/ (symbolic links, nothing copied):

    build/mutation/pyproject.toml  -> pyproject.toml (mutmut's and pytest's settings)
    build/mutation/mangaassist     -> layers/shared/python/mangaassist
    build/mutation/mangaassist_dev -> scripts/mangaassist_dev
    build/mutation/tests           -> tests
    build/mutation/terraform       -> terraform  (mangaassist_dev finds wiring.json two levels up)
    build/mutation/shared          -> ../shared  (the conformance data, beside the tests' root)
    build/mutation/mutants/        mutmut's copy; the tests run in it, so it also links what they
                                   read from their root: terraform, schemas, functions, layers,
                                   scripts and the locks

mutmut puts mutants/ first on sys.path, before the venv's .pth entries, so ``import mangaassist``
is the mutated copy. Each mutant runs only the tests that called its function during mutmut's
stats run. Every run starts afresh: mutmut keeps a verdict as long as its function is unchanged,
so a kill by a test since deleted would stand. ``--keep`` (``make mutation KEEP=1``) is for
working on survivors: it keeps the last run's kills and tests every other mutant again, with the
tests as they are now (mutmut collects the new ones first).

The goal (issue 15): at least 90% of each module's mutants killed, and every survivor listed in
docs/mutation.md with why it is equivalent. The script exits 1 when either is not met.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "build" / "mutation"
DOC = ROOT / "docs" / "mutation.md"
MUTMUT = ROOT / ".venv" / "bin" / "mutmut"
GOAL = 0.90

# Where each top-level name of the mutation tree comes from.
TREE = {
    "pyproject.toml": ROOT / "pyproject.toml",
    "mangaassist": ROOT / "layers" / "shared" / "python" / "mangaassist",
    "mangaassist_dev": ROOT / "scripts" / "mangaassist_dev",
    "tests": ROOT / "tests",
    "terraform": ROOT / "terraform",
    "shared": ROOT.parent / "shared",
}
# What the tests read relative to their root (tests/..), linked into mutants/.
TEST_ROOT = ["terraform", "schemas", "config", "functions", "layers", "scripts",
             "requirements.txt", "requirements-dev.txt"]

# mutmut's verdicts (mutmut.stats.status_by_exit_code) and how they count here. mutmut calls 255 a
# timeout, but its fork server exits 255 when pytest could not even run the mutant's tests (a test
# id it cannot find, say): nothing was detected, so it counts against the kill rate.
DETECTED = {"killed", "timeout", "caught by type check"}
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          37: "caught by type check", -24: "timeout", 24: "timeout", 152: "timeout", 255: "tests not run",
          -11: "segfault", -9: "segfault", None: "not checked"}
MUTANT_NAME = re.compile(r"\b(mangaassist(?:_dev)?(?:\.\w+)+__mutmut_\d+)\b")


def config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def link(path: Path, target: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.symlink_to(os.path.relpath(target, path.parent))


def lay_out(keep: bool) -> None:
    missing = [str(target) for target in TREE.values() if not target.exists()]
    if missing:
        sys.exit(f"mutation: cannot lay out the tree, missing: {', '.join(missing)}")
    mutants = WORK / "mutants"
    if mutants.exists() and not keep:
        shutil.rmtree(mutants)
        (WORK / "mutmut.log").unlink(missing_ok=True)
    mutants.mkdir(parents=True, exist_ok=True)
    for name, target in TREE.items():
        link(WORK / name, target)
    for name in TEST_ROOT:
        link(mutants / name, ROOT / name)


def not_killed() -> list[str]:
    """Every mutant the last run did not kill (survived, no tests, timeout, suspicious, not checked)."""
    names = []
    for meta in (WORK / "mutants").rglob("*.py.meta"):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        names += [name for name, code in codes.items() if STATUS.get(code, "suspicious") not in DETECTED]
    return sorted(names)


def run_mutmut(max_children: int, names: list[str]) -> None:
    """mutmut run, its spinner and per-mutant lines kept in build/mutation/mutmut.log; its last tally shown."""
    if not MUTMUT.exists():
        sys.exit(f"mutation: {MUTMUT} is missing: run make setup")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MUTANT_UNDER_TEST", None)
    command = [str(MUTMUT), "run", "--max-children", str(max_children), *names]
    shown = " ".join(command[1:4]) + (f" <{len(names)} mutants>" if names else "")
    print(f"$ cd build/mutation && mutmut {shown}  (output: build/mutation/mutmut.log)", flush=True)
    started = time.monotonic()
    with (WORK / "mutmut.log").open("a") as log:
        code = subprocess.call(command, cwd=WORK, env=env, stdout=log, stderr=subprocess.STDOUT)
    text = (WORK / "mutmut.log").read_text(errors="replace")
    tallies = re.findall(r"(\d+/\d+\s+🎉[^⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏\n]*)", text)
    print(f"mutmut ran for {time.monotonic() - started:.0f} s; last tally: {tallies[-1].strip() if tallies else '-'}",
          flush=True)
    if code != 0:
        sys.exit(f"mutation: mutmut exited with {code}: no figures (see build/mutation/mutmut.log)")


def verdicts(module: str) -> dict[str, str]:
    meta = WORK / "mutants" / (module + ".meta")
    if not meta.exists():
        sys.exit(f"mutation: no results for {module} ({meta.relative_to(ROOT)} is missing)")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: STATUS.get(code, "suspicious") for name, code in codes.items()}


def documented() -> set[str]:
    return set(MUTANT_NAME.findall(DOC.read_text())) if DOC.exists() else set()


def show(name: str) -> str:
    result = subprocess.run([str(MUTMUT), "show", name], cwd=WORK, capture_output=True, text=True)
    return result.stdout.strip() or result.stderr.strip()


def report(modules: list[str]) -> int:
    """The table per module; the rate is of the mutants checked (all of them, after a whole run)."""
    listed = documented()
    rows, failures, undocumented, results = [], [], [], {}
    for module in modules:
        found = verdicts(module)
        counts = Counter(found.values())
        checked = len(found) - counts["skipped"] - counts["not checked"]
        detected = sum(counts[s] for s in DETECTED)
        rate = detected / checked if checked else 0.0
        survivors = sorted(name for name, status in found.items()
                           if status not in DETECTED | {"skipped", "not checked"})
        missing = [name for name in survivors if name not in listed]
        undocumented += [(name, found[name]) for name in missing]
        results[module] = {"mutants": len(found), "checked": checked, **counts, "kill_rate": round(rate, 4),
                           "survivors": survivors}
        rows.append((module, len(found), checked, counts["killed"], counts["timeout"], len(survivors), rate,
                     len(survivors) - len(missing)))
        if rate < GOAL or not checked:
            failures.append(f"{module}: {rate:.1%} killed, goal {GOAL:.0%}")
        if counts["not checked"]:
            failures.append(f"{module}: {counts['not checked']} mutants not checked yet (make mutation KEEP=1)")
    (WORK / "report.json").write_text(json.dumps(results, indent=2) + "\n")

    print("\n| module | mutants | checked | killed | timeout | survived | kill rate | survivors explained |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for module, total, checked, killed, timeout, survived, rate, known in rows:
        print(f"| {module} | {total} | {checked} | {killed} | {timeout} | {survived} | {rate:.1%} | "
              f"{known}/{survived} |")
    stale = sorted(name for name in listed if not any(name in r["survivors"] for r in results.values())
                   and any(name.startswith(m[:-3].replace("/", ".") + ".") for m in modules))
    if stale:
        print(f"\nlisted in docs/mutation.md but no longer surviving (remove them): {', '.join(stale)}")
    for name, status in undocumented:
        print(f"\n--- {status}, not in docs/mutation.md: {name}\n{show(name)}")
    if undocumented:
        failures.append(f"{len(undocumented)} survivor(s) neither killed nor explained in docs/mutation.md")
    print("\nrecorded in build/mutation/report.json")
    for failure in failures:
        print(f"GOAL NOT MET: {failure}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-children", type=int, default=int(os.environ.get("MAX_CHILDREN", "1")),
                        help="mutants tested at once (default 1, or $MAX_CHILDREN)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the last run's kills and test every other mutant again")
    parser.add_argument("--report-only", action="store_true", help="print the last run's figures, run nothing")
    parser.add_argument("names", nargs="*", help="only these mutants (mutmut names, globs allowed)")
    args = parser.parse_args()
    modules = config()["only_mutate"]
    if args.names:
        lay_out(keep=True)
        run_mutmut(args.max_children, args.names)
    elif args.keep and (WORK / "mutants").exists():
        lay_out(keep=True)
        # A changed source file gets new mutants when mutmut starts, unchecked: a second pass tests those.
        for _ in range(2):
            names = not_killed()
            if not names:
                print("mutation: every mutant of the last run was killed; nothing to test again")
                break
            run_mutmut(args.max_children, names)
            if not set(not_killed()) - set(names):
                break
    elif not args.report_only:
        lay_out(keep=False)
        run_mutmut(args.max_children, [])
    return report(modules)


if __name__ == "__main__":
    sys.exit(main())
