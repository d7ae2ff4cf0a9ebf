"""scripts/ops.py's arguments and name lookups, without a platform behind them."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import ops  # noqa: E402


def test_times_are_iso_epoch_now_or_relative():
    assert ops.moment("2026-11-25T00:00:00Z") == ops.moment("2026-11-25T09:00:00+09:00") == 1795564800.0
    assert ops.moment("2026-11-25T00:00:00") == 1795564800.0  # UTC unless it says otherwise
    assert ops.moment("1795564800") == 1795564800.0
    assert abs(ops.moment("now") - time.time()) < 2
    assert abs(ops.moment("-1h") - (time.time() - 3600)) < 2 and abs(ops.moment("-2d") - (time.time() - 172800)) < 2
    assert abs(ops.moment("-1.5m") - (time.time() - 90)) < 2
    for bad in ("yesterday", "-1y", "1h", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="is not a time"):
            ops.moment(bad)


def test_a_relative_time_after_from_or_to_is_read_as_its_value():
    assert ops.relative_times_as_values(["replay", "--from", "-1h", "--to", "now", "--rule", "r"]) == [
        "replay", "--from=-1h", "--to", "now", "--rule", "r"]
    assert ops.relative_times_as_values(["replay", "--to", "-5m", "--from"]) == ["replay", "--to=-5m", "--from"]
    args = ops.build_parser().parse_args(ops.relative_times_as_values(["replay", "--from", "-1h", "--to", "-30m"]))
    assert args.end - args.start == pytest.approx(1800, abs=2)


@pytest.mark.parametrize("text, ok", [("1", True), ("366", True), ("0", False), ("367", False), ("-1", False),
                                      ("x", False), ("1.5", False)])
def test_days_are_validated(text, ok):
    if ok:
        assert ops.days(text) == int(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            ops.days(text)


def test_a_file_is_a_path_or_a_file_url(tmp_path):
    assert ops.file_path("file:///tmp/x.json") == Path("/tmp/x.json") and ops.file_path("a.json") == Path("a.json")
    (tmp_path / "p.json").write_text('{"a": 1}')
    assert ops.inline_or_file(f"file://{tmp_path / 'p.json'}") == '{"a": 1}' and ops.inline_or_file("{}") == "{}"
    with pytest.raises(argparse.ArgumentTypeError, match="cannot read"):
        ops.inline_or_file(f"file://{tmp_path / 'none.json'}")


def test_the_same_file_is_the_same_delivery_and_a_new_id_a_new_one():
    body = json.dumps({"id": "evt_1QmangaCheckout0001", "type": "checkout.session.completed"}).encode()
    spec = {"delivery_id": "payload:id"}
    same = [ops.webhook("stripe", spec, ["whsec_x"], body, new_id=False)[0] for _ in range(2)]
    assert same[0] == same[1] == body
    fresh, _ = ops.webhook("stripe", spec, ["whsec_x"], body, new_id=True)
    assert json.loads(fresh)["id"].startswith("evt_") and json.loads(fresh)["id"] != "evt_1QmangaCheckout0001"
    github = [ops.webhook("github", {"delivery_id": "header:x-github-delivery"}, ["s"], body, new_id=False)[1]
              ["X-GitHub-Delivery"] for _ in range(2)]
    assert github[0] == github[1]
    assert ops.webhook("github", {}, ["s"], body, new_id=True)[1]["X-GitHub-Delivery"] != github[0]
    standard = ops.webhook("standard-webhooks", {"delivery_id": "signed"}, ["whsec_" + "A" * 32], body, False)[1]
    assert standard["webhook-id"] == ops.webhook("standard-webhooks", {}, ["whsec_" + "A" * 32], body, False)[1][
        "webhook-id"]


def test_terraform_outputs_give_every_name(tmp_path):
    names = json.loads((ROOT / "terraform" / "tests" / "fixtures" / "names.json").read_text())["names"]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"names": {"sensitive": False, "type": [], "value": names},
                                "webhook_urls": {"value": {"stripe": "https://x.lambda-url/webhooks/stripe"}}}))
    outputs = ops.terraform_outputs(str(path))
    assert outputs["names"]["bus"] == names["bus"] and outputs["webhook_urls"]["stripe"].startswith("https://")
    assert ops.terraform_outputs(f"file://{path}")["names"] == names
    path.write_text(json.dumps({"api_url": {"value": "https://api"}}))
    with pytest.raises(ops.OpsError, match="no `names` output"):
        ops.terraform_outputs(str(path))
    path.write_text("not json")
    with pytest.raises(ops.OpsError, match="not JSON"):
        ops.terraform_outputs(str(path))


def test_dlqs_are_chosen_by_name_rule_and_target_or_all():
    names = json.loads((ROOT / "terraform" / "tests" / "fixtures" / "names.json").read_text())["names"]
    parse = ops.build_parser().parse_args
    assert len(ops.chosen_dlqs(parse(["redrive", "--all"]), names)) == len(names["target_dlqs"])
    by_target = ops.chosen_dlqs(parse(["redrive", "--rule", "payment-completed", "--target", "order_confirmation"]),
                                names)
    by_id = ops.chosen_dlqs(parse(["redrive", "--rule", "payment-completed", "--target", "order-confirmation"]), names)
    assert by_target == by_id == [("payment-completed/order-confirmation",
                                   names["target_dlqs"]["payment-completed/order-confirmation"])]
    name = names["target_dlqs"]["all-events/analytics"]
    assert ops.chosen_dlqs(parse(["redrive", "--dlq", name]), names) == [("all-events/analytics", name)]
    with pytest.raises(ops.OpsError, match="no DLQ named 'nope'.*" + names["queue_dlqs"]["jobs"]):
        ops.chosen_dlqs(parse(["redrive", "--dlq", "nope"]), names)
    queue_dlq = names["queue_dlqs"]["notifications"]  # a queue's own DLQ: keyed by its queue
    assert ops.chosen_dlqs(parse(["redrive", "--dlq", queue_dlq]), names) == [("notifications", queue_dlq)]
    assert queue_dlq not in dict(ops.chosen_dlqs(parse(["redrive", "--all"]), names)).values()
    with pytest.raises(SystemExit):  # argparse: --dlq and --all exclude each other
        parse(["redrive", "--dlq", name, "--all"])
