"""The archive as a log of accepted events, the delivery journal, and what a restart delivers again."""
from __future__ import annotations

import json

from mangaassist_dev.delivery import Archive, replayed
from mangaassist_dev.journal import Journal, delivery_key, unfinished
from mangaassist_dev.jsonl import Damage, read_records
from mangaassist_dev.routing import parse_wiring

WIRING = parse_wiring({
    "rules": {
        "payments": {"event_pattern": {"detail-type": ["PaymentCompleted"]},
                     "targets": {"confirm": {"function": "order_confirmation"}, "audit": {"queue": "audit"}}},
        "everything": {"event_pattern": {"source": [{"prefix": "mangaassist."}]},
                       "targets": {"sink": {"queue": "analytics"}}},
    },
})


def event(n: int, detail_type: str = "PaymentCompleted") -> dict:
    return {"version": "0", "id": f"e{n}", "detail-type": detail_type, "source": "mangaassist.payments",
            "account": "123456789012", "time": f"2026-11-20T01:{n:02d}:00Z", "region": "ap-northeast-1",
            "resources": [], "detail": {"n": n}}


def finished(journal: Journal, ev: dict, rule: str, target: str, at: float, status: str = "delivered",
             replay: str | None = None) -> None:
    journal.finished({"event_id": ev["id"], "rule": rule, "target": target, "replay_name": replay, "status": status,
                      "attempts": 1, "finished_at": at})


def test_a_torn_last_line_and_garbage_lines_are_skipped_and_said(tmp_path):
    path = tmp_path / "archive.jsonl"
    good = json.dumps({"archived_at": 1.0, "event": event(1)})
    path.write_text(f"{good}\nnot json at all\n[1, 2]\n{json.dumps({'archived_at': 2.0})}\n{good[:40]}")
    archive = Archive("a", None, path)
    assert archive.event_count == 1 and archive.get("e1")["detail"] == {"n": 1}
    assert archive.damage.lines == [2, 3, 4, 5]
    assert archive.damage.describe() == "archive.jsonl: skipped 4 damaged line(s) (2, 3, 4, 5)"
    archive.record(event(2))  # the torn line was ended: the new record is a line of its own
    archive.close()
    reread = Archive("a", None, path)
    assert [e["id"] for _, e in reread.archived()] == ["e1", "e2"] and reread.damage.lines == [2, 3, 4, 5]


def test_an_empty_or_missing_file_reads_as_nothing(tmp_path):
    damage = Damage(tmp_path / "none.jsonl")
    assert list(read_records(tmp_path / "none.jsonl", damage)) == [] and not damage
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert list(read_records(tmp_path / "empty.jsonl", damage)) == [] and not damage


def test_what_finished_is_not_delivered_again_and_everything_else_is(tmp_path):
    archived = [(10.0, event(1)), (11.0, event(2)), (12.0, event(3, "OrderShipped"))]
    journal = Journal(tmp_path / "journal.jsonl")
    finished(journal, event(1), "payments", "order_confirmation", at=20)
    finished(journal, event(1), "payments", "audit", at=21, status="dead_lettered")
    finished(journal, event(1), "everything", "analytics", at=22)
    finished(journal, event(2), "everything", "analytics", at=23)
    journal.close()
    contents = Journal(tmp_path / "journal.jsonl").load()
    pending = unfinished(archived, WIRING, contents, until=100)
    assert sorted((p.event["id"], p.rule.name, p.target.resource) for p in pending) == [
        ("e2", "payments", "audit"), ("e2", "payments", "order_confirmation"), ("e3", "everything", "analytics")]


def test_a_delivery_that_finished_after_the_restored_state_was_taken_is_made_again(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    finished(journal, event(1), "everything", "analytics", at=50)
    finished(journal, event(2), "everything", "analytics", at=70)  # its effects were lost with the state
    contents = journal.load()
    pending = unfinished([(1.0, event(1)), (2.0, event(2))], WIRING, contents, until=60)
    assert {(p.event["id"], p.target.resource) for p in pending} >= {("e2", "analytics")}
    assert ("e1", "analytics") not in {(p.event["id"], p.target.resource) for p in pending}


def test_a_redriven_delivery_counts_by_its_latest_line(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    finished(journal, event(1), "everything", "analytics", at=1, status="dead_lettered")
    finished(journal, event(1), "everything", "analytics", at=2)
    assert journal.load().finished[delivery_key("e1", "everything", "analytics", None)]["status"] == "delivered"


def test_a_started_replay_resumes_its_unfinished_deliveries_with_its_name(tmp_path):
    archive = Archive("a", None)
    for n in (1, 2):
        archive.record(event(n))
    journal = Journal(tmp_path / "journal.jsonl")
    journal.replay_started({"name": "r1", "start": 0, "end": 2e9, "rules": ["payments"], "events": 2, "deliveries": 4,
                            "started_at": 5})
    for target in ("order_confirmation", "audit"):
        finished(journal, event(1), "payments", target, at=6, replay="r1")
    for n in (1, 2):
        for rule, target in (("payments", "order_confirmation"), ("payments", "audit"), ("everything", "analytics")):
            finished(journal, event(n), rule, target, at=4)
    pending = unfinished(archive.archived(), WIRING, journal.load(), until=100, replay_events=archive.between)
    assert sorted((p.event["id"], p.event["replay-name"], p.target.resource) for p in pending) == [
        ("e2", "r1", "audit"), ("e2", "r1", "order_confirmation")]
    assert pending[0].event == replayed(event(2), "r1")


def test_a_baseline_counts_an_older_archive_as_delivered(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.baseline(100.0)
    pending = unfinished([(99.0, event(1)), (101.0, event(2))], WIRING, journal.load(), until=0)
    assert {p.event["id"] for p in pending} == {"e2"}


def test_journal_lines_that_name_no_delivery_are_damage_not_a_crash(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"finished": {"event_id": "e1"}}\n{"finished": {"event_id": "e1", "rule": "r", "target": "t", '
                    '"finished_at": "soon"}}\n{"replay": {"no": "name"}}\n{"other": 1}\n')
    contents = Journal(path).load()
    assert contents.finished == {} and contents.damage.lines == [1, 2]
