"""The emulator's state in the data folder: saved at stop, snapshotted while running, restored at
start, saved when the stack dies, and a damaged file never stops a start (embedded/emulator_state.py)."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from embedded.emulator_process import PER_SERVICE, EmulatorProcess

ROOT = Path(__file__).resolve().parents[2]
REGION = "ap-northeast-1"
BUS = "state-test-bus"


def started(monkeypatch, folder: Path, **options) -> EmulatorProcess:
    emulator = EmulatorProcess(BUS, lambda events: None, state_folder=folder, **options).start()
    for key, value in {"AWS_ENDPOINT_URL": emulator.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    return emulator


def clients():
    session = boto3.session.Session(region_name=REGION)  # a new session picks up the transport
    return {name: session.client(name) for name in ("dynamodb", "s3", "sqs", "secretsmanager", "events")}


def write_everything(aws, tag: str) -> None:
    aws["dynamodb"].create_table(TableName="claims", BillingMode="PAY_PER_REQUEST",
                                 KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                                 AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    aws["dynamodb"].put_item(TableName="claims", Item={"id": {"S": tag}, "n": {"N": "1"}})
    aws["s3"].create_bucket(Bucket="raw-bodies", CreateBucketConfiguration={"LocationConstraint": REGION})
    aws["s3"].put_object(Bucket="raw-bodies", Key=f"{tag}.json", Body=b"\x00\xff" * 10)
    url = aws["sqs"].create_queue(QueueName="dlq")["QueueUrl"]
    aws["sqs"].send_message(QueueUrl=url, MessageBody=tag, MessageAttributes={
        "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"}})
    aws["secretsmanager"].create_secret(Name="webhooks/stripe", SecretString=tag)
    aws["events"].create_event_bus(Name=BUS)


def assert_everything(aws, tag: str) -> None:
    assert aws["dynamodb"].get_item(TableName="claims", Key={"id": {"S": tag}})["Item"]["n"] == {"N": "1"}
    assert aws["s3"].get_object(Bucket="raw-bodies", Key=f"{tag}.json")["Body"].read() == b"\x00\xff" * 10
    url = aws["sqs"].get_queue_url(QueueName="dlq")["QueueUrl"]
    message = aws["sqs"].receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
    assert message["Body"] == tag and message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "SDK_CLIENT_ERROR"
    assert aws["secretsmanager"].get_secret_value(SecretId="webhooks/stripe")["SecretString"] == tag
    assert BUS in {b["Name"] for b in aws["events"].list_event_buses()["EventBuses"]}


def test_state_saved_at_stop_comes_back_at_the_next_start(monkeypatch, tmp_path):
    emulator = started(monkeypatch, tmp_path)
    try:
        assert emulator.restored == {"services": [], "taken_at": None, "skipped": []}  # a fresh folder
        write_everything(clients(), "first")
    finally:
        saved = emulator.stop()
    assert saved["bytes"] > 0 and saved["errors"] == []
    again = started(monkeypatch, tmp_path)
    try:
        restored = again.restored
        assert {"dynamodb", "s3", "sqs", "secretsmanager", "events"} <= set(restored["services"])
        assert restored["skipped"] == [] and time.time() - restored["taken_at"] < 120
        aws = clients()
        with pytest.raises(aws["s3"].exceptions.BucketAlreadyOwnedByYou):  # as the stack's start asks again
            aws["s3"].create_bucket(Bucket="raw-bodies", CreateBucketConfiguration={"LocationConstraint": REGION})
        assert_everything(aws, "first")
    finally:
        again.stop()


def test_with_shards_each_service_is_restored_in_its_own_process(monkeypatch, tmp_path):
    emulator = started(monkeypatch, tmp_path, shards=PER_SERVICE)
    try:
        write_everything(clients(), "sharded")
    finally:
        emulator.stop()
    assert sorted(p.name for p in tmp_path.glob("*.pickle")) == ["dynamodb.pickle", "main.pickle", "s3.pickle"]
    unsharded = started(monkeypatch, tmp_path)  # the main process takes every service back
    try:
        assert_everything(clients(), "sharded")
    finally:
        unsharded.stop()


def test_a_damaged_state_file_is_moved_aside_and_said_and_the_rest_still_restores(monkeypatch, tmp_path):
    emulator = started(monkeypatch, tmp_path, shards=PER_SERVICE)
    try:
        write_everything(clients(), "kept")
    finally:
        emulator.stop()
    (tmp_path / "s3.pickle").write_bytes(b"\x80\x05 not a pickle")
    (tmp_path / "dynamodb.pickle").write_bytes(pickle.dumps({"format": 999}))
    again = started(monkeypatch, tmp_path, shards=PER_SERVICE)
    try:
        skipped = again.restored["skipped"]
        assert len(skipped) == 2 and all("moved to" in line and "start empty" in line for line in skipped)
        assert sorted(p.name for p in tmp_path.glob("*.damaged")) == ["dynamodb.damaged", "s3.damaged"]
        aws = clients()
        assert aws["s3"].list_buckets()["Buckets"] == [] and aws["dynamodb"].list_tables()["TableNames"] == []
        assert aws["secretsmanager"].get_secret_value(SecretId="webhooks/stripe")["SecretString"] == "kept"
    finally:
        again.stop()


def test_a_snapshot_while_running_bounds_what_a_crash_loses(monkeypatch, tmp_path):
    emulator = started(monkeypatch, tmp_path, snapshot_seconds=0.5)
    try:
        aws = clients()
        write_everything(aws, "before")
        snapshot = tmp_path / "main.pickle"
        deadline = time.monotonic() + 20
        while not snapshot.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert snapshot.exists(), "a snapshot within the interval"
        time.sleep(1.5)  # the calls made after the first one are in the next
        first = snapshot.stat().st_mtime_ns
        time.sleep(1.5)
        assert snapshot.stat().st_mtime_ns == first, "nothing changed: no new snapshot"
        for pid in emulator.pids:  # the whole process group killed: nothing saves at the end
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    finally:
        emulator.stop()
    assert not list(tmp_path.glob(".*.tmp")), "no half-written snapshot left behind"
    again = started(monkeypatch, tmp_path)
    try:
        assert_everything(clients(), "before")
    finally:
        again.stop()


def test_when_the_stack_dies_the_emulator_saves_before_it_exits(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, boto3\n"
        f"sys.path[:0] = {[str(ROOT / 'scripts'), str(ROOT / 'layers' / 'shared' / 'python')]!r}\n"
        "from embedded.emulator_process import EmulatorProcess\n"
        "if __name__ == '__main__':\n"
        f"    emulator = EmulatorProcess('bus', lambda events: None, state_folder={str(tmp_path / 'state')!r})\n"
        "    emulator.start()\n"
        "    ddb = boto3.session.Session(region_name='ap-northeast-1', aws_access_key_id='x', "
        "aws_secret_access_key='x').client('dynamodb', endpoint_url=emulator.endpoint_url)\n"
        "    ddb.create_table(TableName='t', BillingMode='PAY_PER_REQUEST', KeySchema=[{'AttributeName': 'id', "
        "'KeyType': 'HASH'}], AttributeDefinitions=[{'AttributeName': 'id', 'AttributeType': 'S'}])\n"
        "    print(emulator.pid, flush=True)\n"
        "    os._exit(0)  # no stop(): as if the stack was killed\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    state = tmp_path / "state" / "main.pickle"
    deadline = time.monotonic() + 30
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(state, "rb") as file:
        saved = pickle.load(file)
    backends = saved["backends"].items()
    assert any(service == "dynamodb" and backend.tables.get("t") for (service, _, _), backend in backends)


@pytest.mark.parametrize("content", [b"", b"garbage", pickle.dumps(["not", "a", "dict"])])
def test_restore_never_fails_on_what_it_reads(tmp_path, content):
    from embedded.emulator_state import restore

    (tmp_path / "main.pickle").write_bytes(content)
    report = restore(tmp_path, lambda service: True)
    assert report.services == set() and len(report.skipped) == 1 and (tmp_path / "main.damaged").exists()
