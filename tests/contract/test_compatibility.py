"""Compatibility: what a contract change does to its writers and readers, as `make schema-compat`
judges it (mangaassist_dev.schema_compat), on evolutions of every real schema and on a git
repository with a planted breaking change; and the current contracts are open for additions and
closed for removals.
"""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from mangaassist_dev import schema_compat
from mangaassist_dev.schema_compat import BOTH, NARROWED, WIDENED, breaking, compare, kind_of

from mangaassist import contracts

ROOT = Path(__file__).resolve().parents[2]
DETAIL_TYPES = contracts.detail_types()
IDS = ["/".join(dt) for dt in DETAIL_TYPES]
WEBHOOKS = sorted(p.name.removesuffix(".schema.json") for p in (ROOT / "schemas" / "webhooks").glob("*.schema.json"))


def load(source: str, detail_type: str) -> tuple[dict, dict]:
    path = contracts.schema_path(source, detail_type)
    samples = json.loads(path.with_name(f"{detail_type}.samples.json").read_text(encoding="utf-8"))
    return json.loads(path.read_text(encoding="utf-8")), samples


def event_path(source: str, detail_type: str) -> str:
    return f"schemas/events/{source}/{detail_type}.schema.json"


def with_an_extra_field_in_every_object(document):
    if isinstance(document, dict):
        return {**{k: with_an_extra_field_in_every_object(v) for k, v in document.items()},
                "added_in_a_later_version": {"anything": [1, "two"]}}
    if isinstance(document, list):
        return [with_an_extra_field_in_every_object(v) for v in document]
    return document


# --- the current contracts are open for additions and closed for removals ---------------------
@pytest.mark.parametrize("source, detail_type", DETAIL_TYPES, ids=IDS)
def test_fields_added_anywhere_are_accepted(source, detail_type):
    _, samples = load(source, detail_type)
    for event in samples["valid"]:
        contracts.validate_detail(source, detail_type, with_an_extra_field_in_every_object(event["detail"]))


@pytest.mark.parametrize("source, detail_type", DETAIL_TYPES, ids=IDS)
def test_removing_any_required_field_is_refused_by_name(source, detail_type):
    schema, samples = load(source, detail_type)
    detail = samples["valid"][0]["detail"]
    for field in schema["required"]:
        with pytest.raises(contracts.ContractError) as caught:
            contracts.validate_detail(source, detail_type, {k: v for k, v in detail.items() if k != field})
        assert caught.value.path == f"detail.{field}"


# --- who a change breaks ----------------------------------------------------------------------
@pytest.mark.parametrize("path, breaks", [
    ("schemas/events/mangaassist.payments/PaymentCompleted.schema.json", BOTH),
    ("schemas/envelope.schema.json", BOTH),
    ("schemas/webhooks/stripe.schema.json", {NARROWED}),
    ("schemas/api/search.request.schema.json", {NARROWED}),
    ("schemas/api/search.response.schema.json", {WIDENED}),
    ("schemas/other/thing.schema.json", BOTH),
])
def test_which_direction_breaks_depends_on_who_writes_and_who_reads(path, breaks):
    assert kind_of(path)[1] == breaks


# Each evolution, and what it does: (change, directions, what the report says).
def add_optional(schema):
    schema["properties"]["gift_message"] = {"type": "string", "maxLength": 200}


def add_required(schema):
    add_optional(schema)
    schema.setdefault("required", []).append("gift_message")


def drop_a_required_field(schema):
    if schema.get("required"):
        schema["required"].pop()


def remove_last_property(schema):
    name = list(schema["properties"])[-1]
    del schema["properties"][name]
    schema["required"] = [r for r in schema.get("required", []) if r != name]


def first_string(schema) -> dict:
    return next(p for p in schema["properties"].values() if p.get("type") == "string" and "enum" not in p)


def tighten_a_string(schema):
    prop = first_string(schema)
    prop["maxLength"] = prop.get("maxLength", 10_000) - 1


def relax_a_string(schema):
    first_string(schema).pop("maxLength", None)
    first_string(schema)["minLength"] = 0


def narrow_a_type(schema):
    first_string(schema)["type"] = "null"


def close(schema):
    schema["additionalProperties"] = False


def retitle(schema):
    schema["title"] = "renamed"
    schema["description"] = "described again"


EVOLUTIONS = [
    (add_optional, set(), None),
    (retitle, set(), None),
    (add_required, {NARROWED}, "gift_message became required"),
    (drop_a_required_field, {WIDENED}, "is no longer required"),
    (remove_last_property, {WIDENED}, "its value is no longer checked"),
    (tighten_a_string, {NARROWED}, "maxLength tightened"),
    (relax_a_string, {WIDENED}, "relaxed"),
    (narrow_a_type, {NARROWED, WIDENED}, "type no longer allows string"),
    (close, {NARROWED}, "additionalProperties restricted"),
]


def evolve(old: dict, change) -> dict:
    new = copy.deepcopy(old)
    change(new)
    return new


@pytest.mark.parametrize("change, directions, reason", EVOLUTIONS, ids=[e[0].__name__ for e in EVOLUTIONS])
@pytest.mark.parametrize("source, detail_type", DETAIL_TYPES, ids=IDS)
def test_evolutions_of_every_event_contract(source, detail_type, change, directions, reason):
    """Event details break both ways: any change but an added optional field is breaking."""
    old, samples = load(source, detail_type)
    new = evolve(old, change)
    assert compare(old, old) == [] and breaking(event_path(source, detail_type), old, old) == ([], [])
    changes = compare(old, new)
    assert set().union(*(c.directions for c in changes)) == directions, changes
    breaks, _ = breaking(event_path(source, detail_type), old, new)
    assert bool(breaks) is bool(directions)
    if reason:
        assert any(reason in c.what for c in changes), changes
    else:  # and indeed: every event the old contract accepted, the new one accepts
        validator = Draft4Validator(new)
        assert all(validator.is_valid(event["detail"]) for event in samples["valid"])


@pytest.mark.parametrize("change, directions, reason", EVOLUTIONS, ids=[e[0].__name__ for e in EVOLUTIONS])
@pytest.mark.parametrize("name", WEBHOOKS)
def test_evolutions_of_every_webhook_contract(name, change, directions, reason):
    """Partners write webhook payloads: only what would refuse a delivery accepted today breaks."""
    path = f"schemas/webhooks/{name}.schema.json"
    old = json.loads((ROOT / path).read_text(encoding="utf-8"))
    breaks, others = breaking(path, old, evolve(old, change))
    assert bool(breaks) is (NARROWED in directions), (breaks, others)
    assert all(NARROWED in c.directions for c in breaks) and all(c.directions == {WIDENED} for c in others)


@pytest.mark.parametrize("change, request_breaks, response_breaks", [
    (remove_last_property, False, True),
    (add_required, True, False),
    (narrow_a_type, True, True),
    (add_optional, False, False),
])
def test_api_requests_break_when_narrowed_and_responses_when_widened(change, request_breaks, response_breaks):
    schema = {"type": "object", "required": ["q"], "additionalProperties": True,
              "properties": {"q": {"type": "string", "maxLength": 200}, "limit": {"type": "integer", "minimum": 1}}}
    new = evolve(schema, change)
    assert bool(breaking("schemas/api/search.request.schema.json", schema, new)[0]) is request_breaks
    assert bool(breaking("schemas/api/search.response.schema.json", schema, new)[0]) is response_breaks


@pytest.mark.parametrize("change, expected", [
    (lambda s: s["properties"]["categories"]["items"]["properties"]["severity"]["enum"].remove("low"),
     ("$.properties.categories.items.properties.severity.enum", NARROWED, 'enum lost "low"')),
    (lambda s: s["properties"]["categories"]["items"]["properties"]["severity"]["enum"].append("urgent"),
     ("$.properties.categories.items.properties.severity.enum", WIDENED, 'enum gained "urgent"')),
    (lambda s: s["properties"]["sentiment"]["properties"]["score"].update(minimum=0),
     ("$.properties.sentiment.properties.score.minimum", NARROWED, "minimum tightened (-1 -> 0)")),
    (lambda s: s["properties"]["categories"].update(maxItems=5),
     ("$.properties.categories.maxItems", NARROWED, "maxItems tightened (20 -> 5)")),
    (lambda s: s["properties"]["review_id"].update(pattern="^rev_"),
     ("$.properties.review_id.pattern", NARROWED, "pattern None -> '^rev_'")),
], ids=["nested-enum-narrowed", "nested-enum-widened", "nested-minimum", "max-items", "pattern"])
def test_nested_changes_are_found_where_they_are(change, expected):
    old, _ = load("mangaassist.ai", "ModerationFlagged")
    (found,) = compare(old, evolve(old, change))
    assert (found.path, *found.directions, found.what) == expected


def test_number_types_and_negated_schemas():
    integer, number = {"type": "integer"}, {"type": "number"}
    assert [(c.directions, c.what) for c in compare(integer, number)] == [({WIDENED}, "type now also allows number")]
    assert [(c.directions, c.what) for c in compare(number, integer)] == [({NARROWED}, "type no longer allows number")]
    # What the schema under "not" loses, the schema around it gains: the Stripe payload's catch-all
    # branch refuses the mapped types by name; refusing one more type name narrows the payload.
    stripe = json.loads((ROOT / "schemas" / "webhooks" / "stripe.schema.json").read_text(encoding="utf-8"))
    new = copy.deepcopy(stripe)
    branch = next(b for b in new["anyOf"] if "not" in b["properties"]["type"])
    branch["properties"]["type"]["not"]["enum"].append("customer.created")
    breaks, _ = breaking("schemas/webhooks/stripe.schema.json", stripe, new)
    assert [(c.directions, c.what) for c in breaks] == [({NARROWED}, 'enum gained "customer.created"')]


def test_a_change_it_cannot_analyse_counts_as_breaking_both_ways():
    old, new = {"$ref": "#/definitions/a"}, {"$ref": "#/definitions/b"}
    (change,) = compare(old, new)
    assert change.directions == BOTH and "not analysed" in change.what
    assert breaking("schemas/webhooks/x.schema.json", old, new)[0] == [change]


# --- make schema-compat against a git history ------------------------------------------------
def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c",
                           "commit.gpgsign=false", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A repository whose main holds today's schemas, and a feature branch checked out."""
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "schemas")
    git(tmp_path, "commit", "-q", "-m", "schemas")
    git(tmp_path, "checkout", "-q", "-b", "feature")
    return tmp_path


def edit(repo: Path, relative: str, change) -> None:
    path = repo / relative
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False), encoding="utf-8")


PAYMENT = "schemas/events/mangaassist.payments/PaymentCompleted.schema.json"


def run(repo: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "mangaassist_dev.schema_compat", "--root", str(repo), *args],
                          capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def test_a_planted_breaking_change_fails_and_says_what_and_where(repo):
    edit(repo, PAYMENT, add_required)
    edit(repo, "schemas/webhooks/reviews.schema.json", lambda s: s["properties"]["rating"].update(maximum=4))
    code, out = run(repo)
    assert code == 1, out
    assert "against" in out and "the merge-base of HEAD and main" in out
    assert f"{PAYMENT} (event detail" in out and "BREAKING narrowed $.required: gift_message became required" in out
    assert "BREAKING narrowed $.properties.rating.maximum: maximum tightened (5 -> 4)" in out
    assert "2 changed, 2 breaking change(s)" in out


def test_additive_changes_pass(repo):
    edit(repo, PAYMENT, add_optional)
    edit(repo, "schemas/webhooks/reviews.schema.json", remove_last_property)  # partners: a looser payload is fine
    (repo / "schemas" / "events" / "mangaassist.payments" / "Chargeback.schema.json").write_text(
        json.dumps({"type": "object"}), encoding="utf-8")
    code, out = run(repo)
    assert code == 0, out
    assert "compatible: added optional properties or annotations only" in out
    assert "ok       widened $.properties.text: text removed" in out and "Chargeback.schema.json: new" in out
    assert "0 breaking change(s)" in out


def test_committed_changes_on_the_branch_are_compared_with_where_it_left_main(repo):
    edit(repo, PAYMENT, close)
    git(repo, "commit", "-q", "-am", "close the payment contract")
    assert run(repo)[0] == 1
    git(repo, "checkout", "-q", "main")  # main moves on with an addition the branch does not have...
    edit(repo, PAYMENT, add_optional)
    git(repo, "commit", "-q", "-am", "add gift_message")
    git(repo, "checkout", "-q", "-b", "behind", "HEAD~1")  # ...so a branch behind it is not blamed for it
    code, out = run(repo)
    assert code == 0 and "0 changed" in out, out


def test_origin_main_is_the_default_base_when_there_is_one(repo):
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    edit(repo, "schemas/webhooks/github.schema.json", add_required)
    code, out = run(repo)
    assert code == 1 and "the merge-base of HEAD and origin/main" in out


def test_a_removed_schema_is_breaking(repo):
    (repo / PAYMENT).unlink()
    code, out = run(repo)
    assert code == 1 and "BREAKING narrowed/widened $: schema removed" in out


def test_without_a_base_it_says_so_and_passes_but_a_named_base_must_exist(repo):
    git(repo, "checkout", "-q", "--orphan", "lonely")  # as a single-branch clone of another branch
    git(repo, "commit", "-q", "-m", "no common history")
    git(repo, "branch", "-D", "main", "feature")
    code, out = run(repo)
    assert code == 0 and "NOT CHECKED" in out and "BASE=<ref>" in out
    code, out = run(repo, "--base", "origin/main")
    assert code == 2 and "does not resolve" in out


def test_this_repository_s_schemas_are_analysed_without_surprises():
    """Every keyword the real schemas use is one the checker understands: each compares equal to
    itself, and dropping every constraint from a copy is reported only as widening."""
    for path in sorted((ROOT / "schemas").rglob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert compare(schema, copy.deepcopy(schema)) == [], path
        unknown = {c.what for c in compare({}, schema) if "not analysed" in c.what}
        assert unknown == set(), (path, unknown)


def test_the_module_is_what_make_schema_compat_runs():
    makefile = (ROOT / "Makefile").read_text()
    assert "-m mangaassist_dev.schema_compat" in makefile and schema_compat.__doc__.startswith("make schema-compat")
