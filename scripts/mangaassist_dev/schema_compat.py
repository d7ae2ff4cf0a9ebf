"""make schema-compat: every schema under schemas/ against the same file at a base ref.

A change is described by what it does to the set of documents the schema accepts:

- **narrowed**: the new schema rejects something the old one accepted (a newly required field, a
  type, enum value or bound taken away, a pattern added, additionalProperties closed);
- **widened**: the new schema accepts something the old one rejected (a property's definition
  removed, a field no longer required, a type, enum value or bound added).

Which of the two breaks someone depends on who writes the documents and who reads them:

- event details (``events/**``) and the ``envelope``: written by our functions, read by our
  workers (which validate on receipt), by subscribers, and again by the same workers when archived
  events are replayed. **Both** break: widened, a consumer still on the old contract refuses the
  new values (dead letters during a deploy); narrowed, archived events fail on replay and
  producers not yet deployed are refused.
- inbound webhook payloads (``webhooks/**``): written by partners, read by the ingress.
  **Narrowed** breaks: a partner's delivery starts getting 422.
- API requests (``api/**`` named ``*request*``): written by clients. **Narrowed** breaks.
- API responses (``api/**`` named ``*response*``): read by clients. **Widened** breaks.
- anything else: both.

An added optional property is neither: objects are open (``additionalProperties: true``), and a
field nobody sent before is assumed absent from old documents (the usual convention, and the
only way a contract can grow). A change this module cannot analyse (``$ref`` retargeted,
combinators reshaped, an unknown keyword) counts as both. A schema file removed is breaking; a
new one is not.

The base: ``--base REF`` (``make schema-compat BASE=REF``); by default ``origin/main``, compared
at its merge-base with HEAD when the history has it (a branch behind main is not blamed for what
main added since), else ``origin/main`` itself; without ``origin/main``, the merge-base of HEAD
and a local ``main``. Without any (a shallow or single-branch clone of another branch), nothing
can be compared: it says so and exits 0. A ``--base`` that does not resolve exits 2.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = "schemas"
NARROWED, WIDENED = "narrowed", "widened"
BOTH = frozenset({NARROWED, WIDENED})

LOWER_BOUNDS = ("minimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "maxLength", "maxItems", "maxProperties")
ZERO_DEFAULTS = {"minLength": 0, "minItems": 0, "minProperties": 0}  # absent means 0, no constraint
TIGHTENING_FLAGS = ("exclusiveMinimum", "exclusiveMaximum", "uniqueItems")
STRING_CONSTRAINTS = ("pattern", "format")
ANNOTATIONS = frozenset({"$schema", "id", "title", "description", "default", "examples"})
ANALYSED = frozenset({"type", "enum", "required", "properties", "additionalProperties", "items", "multipleOf",
                      "anyOf", "oneOf", "allOf", "not", "definitions", *LOWER_BOUNDS, *UPPER_BOUNDS,
                      *TIGHTENING_FLAGS, *STRING_CONSTRAINTS}) | ANNOTATIONS


@dataclass(frozen=True)
class Change:
    path: str  # where in the schema, JSONPath-like: $.properties.amount
    directions: frozenset  # NARROWED, WIDENED or both
    what: str

    def flipped(self) -> Change:
        swap = {NARROWED: WIDENED, WIDENED: NARROWED}
        return Change(self.path, frozenset(swap[d] for d in self.directions), self.what)


def kind_of(path: str) -> tuple[str, frozenset]:
    """(what the schema describes, the directions that break its users) for a path under schemas/."""
    parts = Path(path).parts
    name = parts[-1]
    if "events" in parts or name.startswith("envelope"):
        return "event detail (read by consumers and replays)", BOTH
    if "webhooks" in parts:
        return "inbound webhook payload (written by partners)", frozenset({NARROWED})
    if "api" in parts and "request" in name:
        return "API request (written by clients)", frozenset({NARROWED})
    if "api" in parts and "response" in name:
        return "API response (read by clients)", frozenset({WIDENED})
    return "schema of unknown use", BOTH


# --- the comparison -------------------------------------------------------------------------------
def _types(schema: dict) -> set[str] | None:
    declared = schema.get("type")
    return None if declared is None else set(declared if isinstance(declared, list) else [declared])


def _allows(types: set[str] | None, kind: str) -> bool:
    return types is None or kind in types or (kind == "integer" and "number" in types)


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


def compare(old, new, path: str = "$") -> list[Change]:
    """How ``new`` differs from ``old`` in what it accepts (empty: it accepts exactly as much, or
    only differs by added optional properties and annotations)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [] if _json(old) == _json(new) else [Change(path, BOTH, "changed (not a schema object)")]
    changes = _compare_types(old, new, path) + _compare_enum(old, new, path) + _compare_required(old, new, path)
    changes += _compare_properties(old, new, path) + _compare_additional(old, new, path)
    changes += _compare_bounds(old, new, path) + _compare_items(old, new, path)
    changes += _compare_combinators(old, new, path)
    for key in sorted((set(old) | set(new)) - ANALYSED):
        if _json(old.get(key)) != _json(new.get(key)):
            changes.append(Change(f"{path}.{key}", BOTH, f"{key} changed (not analysed)"))
    return changes


def _compare_types(old: dict, new: dict, path: str) -> list[Change]:
    before, after = _types(old), _types(new)
    if before == after:
        return []
    kinds = ("array", "boolean", "integer", "null", "number", "object", "string")
    lost = [k for k in kinds if _allows(before, k) and not _allows(after, k)]
    gained = [k for k in kinds if _allows(after, k) and not _allows(before, k)]
    changes = []
    if lost:
        changes.append(Change(f"{path}.type", frozenset({NARROWED}), f"type no longer allows {', '.join(lost)}"))
    if gained:
        changes.append(Change(f"{path}.type", frozenset({WIDENED}), f"type now also allows {', '.join(gained)}"))
    return changes


def _compare_enum(old: dict, new: dict, path: str) -> list[Change]:
    if "enum" not in old and "enum" not in new:
        return []
    if "enum" not in old:
        return [Change(f"{path}.enum", frozenset({NARROWED}), "enum added")]
    if "enum" not in new:
        return [Change(f"{path}.enum", frozenset({WIDENED}), "enum removed")]
    before, after = {_json(v): v for v in old["enum"]}, {_json(v): v for v in new["enum"]}
    changes = []
    if removed := [before[k] for k in before.keys() - after.keys()]:
        changes.append(Change(f"{path}.enum", frozenset({NARROWED}), f"enum lost {_listing(removed)}"))
    if added := [after[k] for k in after.keys() - before.keys()]:
        changes.append(Change(f"{path}.enum", frozenset({WIDENED}), f"enum gained {_listing(added)}"))
    return changes


def _listing(values: list) -> str:
    return ", ".join(sorted(_json(v) for v in values))


def _compare_required(old: dict, new: dict, path: str) -> list[Change]:
    before, after = set(old.get("required", [])), set(new.get("required", []))
    changes = [Change(f"{path}.required", frozenset({NARROWED}), f"{name} became required")
               for name in sorted(after - before)]
    changes += [Change(f"{path}.required", frozenset({WIDENED}), f"{name} is no longer required")
                for name in sorted(before - after)]
    return changes


def _compare_properties(old: dict, new: dict, path: str) -> list[Change]:
    before, after = old.get("properties", {}), new.get("properties", {})
    closed_before = old.get("additionalProperties", True) is False
    closed_after = new.get("additionalProperties", True) is False
    changes = []
    for name in sorted(before.keys() - after.keys()):
        where = f"{path}.properties.{name}"
        if closed_after:
            changes.append(Change(where, frozenset({NARROWED}), f"{name} removed: no longer allowed"))
        else:
            changes.append(Change(where, frozenset({WIDENED}), f"{name} removed: its value is no longer checked"))
    for name in sorted(after.keys() - before.keys()):
        if closed_before:  # it was refused, now it is allowed
            changes.append(Change(f"{path}.properties.{name}", frozenset({WIDENED}),
                                  f"{name} added to a closed object"))
    for name in sorted(before.keys() & after.keys()):
        changes += compare(before[name], after[name], f"{path}.properties.{name}")
    return changes


def _compare_additional(old: dict, new: dict, path: str) -> list[Change]:
    before, after = old.get("additionalProperties", True), new.get("additionalProperties", True)
    where = f"{path}.additionalProperties"
    if isinstance(before, dict) and isinstance(after, dict):
        return compare(before, after, where)
    if _json(before) == _json(after):
        return []
    if before is True or after is False:  # open -> anything less, or anything -> closed
        return [Change(where, frozenset({NARROWED}), "additionalProperties restricted")]
    return [Change(where, frozenset({WIDENED}), "additionalProperties relaxed")]


def _compare_bounds(old: dict, new: dict, path: str) -> list[Change]:
    changes = []
    for key in LOWER_BOUNDS + UPPER_BOUNDS:
        before, after = old.get(key, ZERO_DEFAULTS.get(key)), new.get(key, ZERO_DEFAULTS.get(key))
        if before == after:
            continue
        lower = key in LOWER_BOUNDS
        if before is None or (after is not None and (after > before if lower else after < before)):
            direction, what = NARROWED, f"{key} tightened ({before} -> {after})"
        else:
            direction, what = WIDENED, f"{key} relaxed ({before} -> {after})"
        changes.append(Change(f"{path}.{key}", frozenset({direction}), what))
    for key in TIGHTENING_FLAGS:
        before, after = bool(old.get(key, False)), bool(new.get(key, False))
        if before != after:
            changes.append(Change(f"{path}.{key}", frozenset({NARROWED if after else WIDENED}),
                                  f"{key} {'set' if after else 'unset'}"))
    if old.get("multipleOf") != new.get("multipleOf"):
        before, after = old.get("multipleOf"), new.get("multipleOf")
        if before is None or (after is not None and after % before == 0):
            directions = frozenset({NARROWED})
        elif after is None or before % after == 0:
            directions = frozenset({WIDENED})
        else:
            directions = BOTH
        changes.append(Change(f"{path}.multipleOf", directions, f"multipleOf {before} -> {after}"))
    for key in STRING_CONSTRAINTS:
        before, after = old.get(key), new.get(key)
        if before != after:
            directions = frozenset({NARROWED}) if before is None else frozenset({WIDENED}) if after is None else BOTH
            changes.append(Change(f"{path}.{key}", directions, f"{key} {before!r} -> {after!r}"))
    return changes


def _compare_items(old: dict, new: dict, path: str) -> list[Change]:
    before, after = old.get("items"), new.get("items")
    where = f"{path}.items"
    if isinstance(before, dict) and isinstance(after, dict):
        return compare(before, after, where)
    if _json(before) == _json(after):
        return []
    if before is None:
        return [Change(where, frozenset({NARROWED}), "items constrained")]
    if after is None:
        return [Change(where, frozenset({WIDENED}), "items no longer constrained")]
    return [Change(where, BOTH, "items changed (not analysed)")]


def _compare_combinators(old: dict, new: dict, path: str) -> list[Change]:
    changes = []
    for key in ("allOf", "anyOf", "oneOf"):
        before, after = old.get(key), new.get(key)
        where = f"{path}.{key}"
        if _json(before) == _json(after):
            continue
        if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
            for index, (a, b) in enumerate(zip(before, after)):
                changes += compare(a, b, f"{where}[{index}]")
        elif before is None:
            changes.append(Change(where, frozenset({NARROWED}), f"{key} added"))
        elif after is None:
            changes.append(Change(where, frozenset({WIDENED}), f"{key} removed"))
        else:
            changes.append(Change(where, BOTH, f"{key} reshaped (not analysed)"))
    if _json(old.get("not")) != _json(new.get("not")):
        if "not" in old and "not" in new:  # what the inner schema gains, the outer loses
            changes += [change.flipped() for change in compare(old["not"], new["not"], f"{path}.not")]
        else:
            changes.append(Change(f"{path}.not", frozenset({NARROWED if "not" in new else WIDENED}),
                                  f"not {'added' if 'not' in new else 'removed'}"))
    before, after = old.get("definitions", {}), new.get("definitions", {})
    for name in sorted(before.keys() | after.keys()):
        if name in before and name in after:
            changes += compare(before[name], after[name], f"{path}.definitions.{name}")
        elif name in before:
            changes.append(Change(f"{path}.definitions.{name}", BOTH, f"definition {name} removed"))
    return changes


def breaking(path: str, old: dict | None, new: dict | None) -> tuple[list[Change], list[Change]]:
    """(breaking, other) changes of the schema at ``path`` (relative to the repository)."""
    if old is None:
        return [], []  # a new schema breaks no one
    if new is None:
        return [Change("$", BOTH, "schema removed")], []
    _, breaks = kind_of(path)
    changes = compare(old, new)
    return [c for c in changes if c.directions & breaks], [c for c in changes if not c.directions & breaks]


# --- git ------------------------------------------------------------------------------------------
def _git(root: Path, *args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _resolves(root: Path, ref: str) -> str | None:
    return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def resolve_base(root: Path, requested: str | None) -> tuple[str | None, str]:
    """(commit, how it was chosen); commit None when there is nothing to compare with."""
    if requested:
        commit = _resolves(root, requested)
        return commit, (f"{requested}" if commit else f"{requested} does not resolve to a commit")
    if _resolves(root, "origin/main"):
        fork = _git(root, "merge-base", "HEAD", "origin/main")
        if fork:
            return fork, "the merge-base of HEAD and origin/main"
        return _resolves(root, "origin/main"), "origin/main (its merge-base with HEAD is not in this clone)"
    if _resolves(root, "main"):
        fork = _git(root, "merge-base", "HEAD", "main")
        if fork:
            return fork, "the merge-base of HEAD and main"
    return None, "no origin/main and no main with a common history (a shallow or single-branch clone?)"


def schemas_at(root: Path, commit: str) -> Iterator[str]:
    listing = _git(root, "ls-tree", "-r", "--name-only", commit, "--", SCHEMAS) or ""
    return (p for p in listing.splitlines() if p.endswith(".schema.json"))


def load_at(root: Path, commit: str, path: str) -> dict:
    return json.loads(_git(root, "show", f"{commit}:{path}") or "null")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", help="the ref to compare with (default: origin/main, else main; see above)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this one)")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    commit, how = resolve_base(root, args.base)
    if commit is None:
        if args.base:
            print(f"schema-compat: {how}", file=sys.stderr)
            return 2
        print(f"schema-compat: NOT CHECKED: {how}. Fetch main (git fetch origin main) or set BASE=<ref>.")
        return 0
    print(f"schema-compat: {SCHEMAS}/ against {commit[:12]} ({how})")
    current = {p.relative_to(root).as_posix() for p in (root / SCHEMAS).rglob("*.schema.json")}
    based = set(schemas_at(root, commit))
    paths = sorted(current | based)
    total_breaking = changed = 0
    for path in paths:
        old = load_at(root, commit, path) if path in based else None
        new = json.loads((root / path).read_text(encoding="utf-8")) if path in current else None
        if old == new:
            continue
        changed += 1
        if old is None:
            print(f"  {path}: new")
            continue
        kind, directions = kind_of(path)
        breaks, others = breaking(path, old, new)
        print(f"  {path} ({kind}; breaking when {' or '.join(sorted(directions))})")
        if not breaks and not others:
            print("    compatible: added optional properties or annotations only")
        for change in breaks:
            print(f"    BREAKING {'/'.join(sorted(change.directions))} {change.path}: {change.what}")
        for change in others:
            print(f"    ok       {'/'.join(sorted(change.directions))} {change.path}: {change.what}")
        total_breaking += len(breaks)
    print(f"schema-compat: {len(paths)} schemas, {changed} changed, {total_breaking} breaking change(s)")
    return 1 if total_breaking else 0


if __name__ == "__main__":
    sys.exit(main())
