"""ops.py's commands for the assistant (token, flags, shadow, subscriptions, callbacks, listen),
parsed as an operator types them and run against moto (mock_aws) through the real Local class."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import ops  # noqa: E402
from mangaassist_dev import product_ops  # noqa: E402
from mangaassist_dev.naming import derive  # noqa: E402
from mangaassist_dev.tables import create_table_request  # noqa: E402

from embedded.appconfig_data import moto_hosted  # noqa: E402
from embedded.resources import ensure_flags_profile  # noqa: E402

REGION, ACCOUNT, PREFIX = "ap-northeast-1", "123456789012", "mangaassist-unit"
WIRING = json.loads((ROOT / "terraform" / "wiring.json").read_text())
FLAGS = json.loads((ROOT / "config" / "flags.json").read_text())


class Data:
    """AppConfig's data API as the local stack serves it (moto lacks it): the newest hosted version,
    else the repository's flags file."""

    def __init__(self, names: dict):
        self.names = names
        self.sessions = 0

    def start_configuration_session(self, **request):
        location = self.names["appconfig"]
        assert (
            request["ApplicationIdentifier"],
            request["EnvironmentIdentifier"],
            request["ConfigurationProfileIdentifier"],
        ) == (location["application"], location["environment"], location["profile"])
        self.sessions += 1
        return {"InitialConfigurationToken": "t"}

    def get_latest_configuration(self, ConfigurationToken):  # noqa: N803 (boto3's name)
        import io

        hosted = moto_hosted(ACCOUNT, REGION)(
            self.names["appconfig"]["application"], self.names["appconfig"]["profile"]
        )
        content, label = hosted or ((ROOT / "config" / "flags.json").read_bytes(), "file:flags.json")
        return {"Configuration": io.BytesIO(content), "VersionLabel": label}


class MotoLocal(ops.Local):
    """ops.Local on moto's in-process mocks (default endpoints, which mock_aws intercepts)."""

    def client(self, service: str):
        if service == "appconfigdata":
            return self.data
        return self.aws.client(service)

    def client_resource(self, service: str):
        return self.aws.resource(service)


@pytest.fixture
def local(tmp_path, monkeypatch):
    with mock_aws():
        names = derive(PREFIX, WIRING, ACCOUNT)
        names["appconfig"] = {**names["appconfig"], "environment": "local"}
        aws = boto3.session.Session(region_name=REGION)
        ddb = aws.client("dynamodb")
        for key in ("subscriptions", "usage"):
            ddb.create_table(**create_table_request(names["tables"][key], WIRING["tables"][key]))
        aws.client("s3").create_bucket(
            Bucket=names["buckets"]["analytics"], CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        sqs = aws.client("sqs")
        for name in (names["queues"]["notifications"], names["queue_dlqs"]["notifications"]):
            sqs.create_queue(QueueName=name)
        names["appconfig"].update(ensure_flags_profile(aws, names, tmp_path / "appconfig-ids.json"))
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (tmp_path / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        stack = tmp_path / "stack.json"
        stack.write_text(
            json.dumps(
                {
                    "names": names,
                    "region": REGION,
                    "aws_endpoint_url": "http://127.0.0.1:9",
                    "base_url": "http://127.0.0.1:9",
                    "jwt": {
                        "issuer": "http://127.0.0.1:9/",
                        "audience": "mangaassist-local",
                        "key_id": "k1",
                        "private_key_file": str(tmp_path / "key.pem"),
                    },
                    "models": {"fast": "local.fast-v1", "fallback": "local.deep-v1", "candidate": "local.candidate-v1"},
                }
            )
        )
        where = MotoLocal(stack)
        where.aws = aws
        where.data = Data(names)
        where.public_key = key.public_key()
        monkeypatch.setattr(ops, "platform", lambda args: where)
        yield where


def run(capsys, *argv: str) -> tuple[int, dict | str, str]:
    """ops.py with these arguments and --json: (exit status, its JSON or text, stderr)."""
    try:
        code = ops.main([*argv, "--json"])
    except SystemExit as exc:  # argparse's refusals
        code = exc.code
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- parsing -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["token", "--user", "u", "--tier", "premium", "--minutes", "5"],
        ["flags", "show"],
        ["flags", "evaluate", "--feature", "chat", "--user", "u", "--tier", "premium"],
        ["flags", "push", "--file", "config/flags.json"],
        ["flags", "kill", "chat"],
        ["flags", "revive", "generate"],
        ["shadow", "--days", "3"],
        ["subscriptions", "add", "--url", "https://x.example/h", "--events", "mangaassist.jobs/JobCompleted", "a.b"],
        ["subscriptions", "list"],
        ["subscriptions", "rotate-secret", "sub_1", "--expire-old"],
        ["subscriptions", "disable", "sub_1"],
        ["subscriptions", "enable", "sub_1"],
        ["subscriptions", "remove", "sub_1"],
        ["callbacks"],
        ["callbacks", "set", "--client", "dev", "--allow-host", "a.example", "b.example"],
        ["listen", "--port", "0", "--secret", "whsec_x", "--secret", "whsec_y"],
    ],
)
def test_every_product_command_parses(argv):
    args = ops.build_parser().parse_args([*argv, "--local"])
    assert callable(args.func) and args.local


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["flags", "kill", "nope"], "invalid choice: 'nope'"),
        (["flags", "evaluate", "--feature", "search", "--user", "u"], "invalid choice: 'search'"),
        (["token", "--user", "u", "--tier", "gold"], "invalid choice: 'gold'"),
        (["token", "--user", "u", "--tier", "free", "--minutes", "0"], "whole number >= 1"),
        (["shadow", "--days", "0"], "from 1 to 366"),
        (["listen", "--port", "70000", "--secret", "whsec_x"], "a port from 0"),
        (["subscriptions", "add", "--events", "a"], "--url"),
        (["flags"], "required"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_status_2(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exited:
        ops.main([*argv, "--local"])
    assert exited.value.code == 2
    assert fragment in one_line(capsys.readouterr().err)


def test_events_shorthand_makes_a_pattern_the_matcher_takes():
    from mangaassist.events.patterns import compile_pattern

    one = json.loads(ops.events_pattern(["mangaassist.jobs/JobCompleted"]))
    assert one == {"source": ["mangaassist.jobs"], "detail-type": ["JobCompleted"]}
    both = compile_pattern(ops.events_pattern(["mangaassist.jobs/JobCompleted", "mangaassist.ai/Shadow*"]))
    assert both({"source": "mangaassist.ai", "detail-type": "ShadowCompared"})
    assert both({"source": "mangaassist.jobs", "detail-type": "JobCompleted"})
    assert not both({"source": "mangaassist.jobs", "detail-type": "JobFailed"})
    with pytest.raises(ops.BadInput):
        ops.events_pattern(["/JobCompleted"])


# --- token ---------------------------------------------------------------------------------------
def test_token_is_minted_locally_with_the_stack_key(local, capsys):
    import jwt

    code, out, _ = run(capsys, "token", "--user", "reader-1", "--tier", "premium", "--minutes", "5", "--local")
    assert code == 0
    claims = jwt.decode(out["token"], local.public_key, algorithms=["RS256"], audience="mangaassist-local")
    assert claims["sub"] == "reader-1" and claims["tier"] == "premium" and claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(out["token"])["kid"] == "k1"


def test_token_on_aws_says_where_tokens_come_from(capsys, monkeypatch):
    class Cloudish:
        local = False

    monkeypatch.setattr(ops, "platform", lambda args: Cloudish())
    code, _, err = run(capsys, "token", "--user", "u", "--tier", "free")
    assert code == 1 and "identity provider" in one_line(err)


# --- flags ---------------------------------------------------------------------------------------
def test_flags_show_and_evaluate_read_what_the_functions_read(local, capsys):
    code, shown, _ = run(capsys, "flags", "show", "--local")
    assert code == 0 and shown["version"] == "file:flags.json" and shown["flags"] == FLAGS
    assert shown["location"]["environment"] == "local"
    code, decided, _ = run(
        capsys, "flags", "evaluate", "--feature", "chat", "--user", "reader-1", "--tier", "premium", "--local"
    )
    assert code == 0 and decided["model_id"] == "local.deep-v1" and decided["model_rule"] == "fallback"
    assert decided["why"]["model"] == "rule: premium customers get the fallback model"
    assert decided["budget_left"] == FLAGS["chat_daily_token_budget"]["default"]
    from mangaassist.dal.usage import UsageCounters

    UsageCounters(local.names["tables"]["usage"], local.client("dynamodb")).add(
        datetime.now(UTC).strftime("%Y-%m-%d"),
        "local.fast-v1",
        {"calls": 1, "input_tokens": 700, "output_tokens": 300, "cost_usd": 0},
        feature="chat",
    )
    code, decided, _ = run(capsys, "flags", "evaluate", "--feature", "chat", "--user", "reader-1", "--local")
    assert decided["tier"] == "free" and decided["model_rule"] in ("fast", "candidate")
    assert decided["budget_left"] == FLAGS["chat_daily_token_budget"]["default"] - 1000


def test_kill_and_revive_push_a_version_that_switches_only_that_feature(local, capsys):
    code, killed, _ = run(capsys, "flags", "kill", "chat", "--local")
    assert code == 0 and killed["enabled"] is False and killed["version"] == 1
    assert killed["previous_version"] == "file:flags.json"
    document, label = product_ops.read_flags(local)
    assert document["chat_enabled"] == {"default": False} and document["recommend_enabled"] == {"default": True}
    assert {k: v for k, v in document.items() if k != "chat_enabled"} == {
        k: v for k, v in FLAGS.items() if k != "chat_enabled"
    }
    code, decided, _ = run(capsys, "flags", "evaluate", "--feature", "chat", "--user", "u", "--local")
    assert decided["enabled"] is False
    code, revived, _ = run(capsys, "flags", "revive", "chat", "--local")
    assert (
        code == 0 and revived["version"] == 2 and product_ops.read_flags(local)[0]["chat_enabled"] == {"default": True}
    )


def test_flags_push_hosts_the_file_and_refuses_an_invalid_one_before_pushing(local, capsys, tmp_path):
    changed = {**FLAGS, "chat_max_tokens": {"default": 321, "boolean_type": False}}
    (tmp_path / "flags.json").write_text(json.dumps(changed))
    code, pushed, _ = run(capsys, "flags", "push", "--file", str(tmp_path / "flags.json"), "--local")
    assert code == 0 and pushed["version"] == 1 and pushed["deployment"] == "immediate (local)"
    assert product_ops.read_flags(local)[0]["chat_max_tokens"]["default"] == 321
    for text, why in (
        ("{not json", "is not JSON"),
        ("[1]", "a JSON object"),
        ('{"chat_enabled": {"default": "yes"}}', "not a feature-flags document"),
        ('{"chat_model": {"boolean_type": false}}', "not a feature-flags document"),
    ):
        (tmp_path / "bad.json").write_text(text)
        code, _, err = run(capsys, "flags", "push", "--file", str(tmp_path / "bad.json"), "--local")
        assert code == 2 and why in one_line(err)
    code, _, err = run(capsys, "flags", "push", "--file", str(tmp_path / "none.json"), "--local")
    assert code == 2 and "cannot read" in one_line(err)
    assert product_ops.read_flags(local) == (changed, "pushed:1"), "nothing invalid was pushed"


def test_cloud_reads_the_flags_location_from_the_terraform_outputs_and_deploys_with_its_strategy(tmp_path):
    names = json.loads((ROOT / "terraform" / "tests" / "fixtures" / "names.json").read_text())["names"]
    flags = {
        "application": names["appconfig"]["application"],
        "environment": "prod",
        "profile": "feature-flags",
        "deployment_strategy_id": "strat1",
    }
    (tmp_path / "outputs.json").write_text(json.dumps({"names": {"value": names}, "flags": {"value": flags}}))
    cloud = ops.Cloud(str(tmp_path / "outputs.json"), REGION)
    assert product_ops.flags_location(cloud) == {**names["appconfig"], **flags}
    appconfig = boto3.client("appconfig", region_name=REGION)
    cloud.client = lambda service: appconfig  # type: ignore[method-assign]
    with Stubber(appconfig) as stub:
        stub.add_response("list_applications", {"Items": [{"Id": "app1", "Name": flags["application"]}]})
        stub.add_response(
            "list_configuration_profiles",
            {"Items": [{"Id": "prof1", "Name": "feature-flags"}]},
            {"ApplicationId": "app1"},
        )
        stub.add_response(
            "create_hosted_configuration_version",
            {"VersionNumber": 7},
            {
                "ApplicationId": "app1",
                "ConfigurationProfileId": "prof1",
                "Content": json.dumps(FLAGS).encode(),
                "ContentType": "application/json",
                "Description": "d",
            },
        )
        stub.add_response("list_environments", {"Items": [{"Id": "env1", "Name": "prod"}]}, {"ApplicationId": "app1"})
        stub.add_response(
            "start_deployment",
            {"DeploymentNumber": 3, "State": "DEPLOYING"},
            {
                "ApplicationId": "app1",
                "EnvironmentId": "env1",
                "ConfigurationProfileId": "prof1",
                "ConfigurationVersion": "7",
                "DeploymentStrategyId": "strat1",
                "Description": "d",
            },
        )
        result = product_ops.push_flags(cloud, FLAGS, "d")
        stub.assert_no_pending_responses()
    assert result["deployment"] == 3 and result["state"] == "DEPLOYING" and result["version"] == 7


# --- shadow --------------------------------------------------------------------------------------
def test_shadow_summarises_each_model_pair_once_per_event(local, capsys):
    day = datetime.now(UTC).date().isoformat()
    event = {
        "id": "e1",
        "detail": {
            "similarity": 0.5,
            "primary": {"model_id": "f", "latency_ms": 100, "cost_usd": 0.001},
            "shadow": {"model_id": "d", "latency_ms": 300, "cost_usd": 0.004},
        },
    }
    second = {**event, "id": "e2", "detail": {**event["detail"], "similarity": 0.9}}
    key = f"events/date={day}/source=mangaassist.ai/detail_type=ShadowCompared/part-1.jsonl"
    body = "\n".join(json.dumps(e) for e in (event, second, event))  # the sink is at-least-once
    local.client("s3").put_object(Bucket=local.names["buckets"]["analytics"], Key=key, Body=body.encode())
    code, out, _ = run(capsys, "shadow", "--days", "1", "--local")
    assert code == 0 and out["pairs"] == [
        {
            "primary": "f",
            "shadow": "d",
            "compared": 2,
            "mean_similarity": 0.7,
            "mean_latency_delta_ms": 200.0,
            "mean_cost_delta_usd": 0.003,
        }
    ]


# --- subscriptions and callbacks ----------------------------------------------------------------
def test_subscriptions_add_list_rotate_disable_remove(local, capsys):
    code, added, _ = run(
        capsys,
        "subscriptions",
        "add",
        "--url",
        "http://127.0.0.1:9/hook",
        "--events",
        "mangaassist.jobs/JobCompleted",
        "--description",
        "unit",
        "--local",
    )
    assert code == 0 and added["id"].startswith("sub_") and added["secret"].startswith("whsec_")
    assert added["event_pattern"] == {"source": ["mangaassist.jobs"], "detail-type": ["JobCompleted"]}
    subs = product_ops.subscriptions(local)
    assert subs.active_secrets(added["id"]) == [added["secret"]]
    code, listed, _ = run(capsys, "subscriptions", "list", "--local")
    assert [(s["subscription_id"], s["enabled"]) for s in listed["subscriptions"]] == [(added["id"], True)]
    code, rotated, _ = run(capsys, "subscriptions", "rotate-secret", added["id"], "--local")
    assert code == 0 and set(product_ops.subscriptions(local).active_secrets(added["id"])) == {
        rotated["secret"],
        added["secret"],
    }, "the old secret signs until the overlap ends"
    code, rotated, _ = run(capsys, "subscriptions", "rotate-secret", added["id"], "--expire-old", "--local")
    assert product_ops.subscriptions(local).active_secrets(added["id"]) == [rotated["secret"]]
    assert run(capsys, "subscriptions", "disable", added["id"], "--local")[:2] == (
        0,
        {"id": added["id"], "enabled": False},
    )
    assert run(capsys, "subscriptions", "list", "--local")[1]["subscriptions"][0]["enabled"] is False
    assert run(capsys, "subscriptions", "enable", added["id"], "--local")[0] == 0
    assert run(capsys, "subscriptions", "remove", added["id"], "--local")[0] == 0
    assert run(capsys, "subscriptions", "list", "--local")[1]["subscriptions"] == []
    code, _, err = run(capsys, "subscriptions", "disable", added["id"], "--local")
    assert code == 1 and f"no subscription '{added['id']}'" in one_line(err)


@pytest.mark.parametrize(
    "argv, why",
    [
        (["--url", "ftp://127.0.0.1/x", "--events", "a"], "only https:// URLs"),
        (["--url", "http://10.0.0.8/x", "--events", "a"], "plain http:// is only for loopback"),
        (["--url", "https://169.254.169.254/latest", "--events", "a"], "metadata service"),
        (["--url", "https://192.168.1.2/x", "--events", "a"], "not a public address"),
        (["--url", "https://user:pw@127.0.0.1/x", "--events", "a"], "no credentials"),
        (["--url", "http://127.0.0.1:9/x", "--event-pattern", '{"source": []}'], "Empty arrays are not allowed"),
        (["--url", "http://127.0.0.1:9/x", "--event-pattern", "[1]"], "event pattern"),
        (["--url", "http://127.0.0.1:9/x", "--events", "a", "--template", '{"InputTemplate": 3}'], "a template is"),
        (["--url", "http://127.0.0.1:9/x", "--events", "a", "--template", "{x"], "--template is not JSON"),
        (["--url", "http://127.0.0.1:9/x", "--events", "a", "--secret", "whsec_c2hvcnQ="], "at least 24 random bytes"),
        (["--url", "http://127.0.0.1:9/x"], "say which events"),
        (["--url", "http://127.0.0.1:9/x", "--events", "a", "--event-pattern", "{}"], "say which events"),
    ],
)
def test_a_bad_subscription_is_refused_in_one_line_and_nothing_is_saved(local, capsys, argv, why):
    code, _, err = run(capsys, "subscriptions", "add", *argv, "--local")
    assert code == 2 and why in one_line(err)
    assert product_ops.subscriptions(local).every() == []


def test_aws_refuses_loopback_receivers(local, capsys):
    local.local = False  # the AWS setting: no loopback
    code, _, err = run(capsys, "subscriptions", "add", "--url", "https://127.0.0.1/x", "--events", "a")
    assert code == 2 and "loopback" in one_line(err)


def test_callbacks_set_and_status_show_dead_letters_without_taking_them(local, capsys):
    code, configured, _ = run(capsys, "callbacks", "set", "--client", "dev", "--allow-host", "Hooks.Example", "--local")
    assert code == 0 and configured["allowed_hosts"] == ["hooks.example"] and configured["secret"].startswith("whsec_")
    sqs = local.client("sqs")
    dlq = sqs.get_queue_url(QueueName=local.names["queue_dlqs"]["notifications"])["QueueUrl"]
    sqs.send_message(
        QueueUrl=dlq,
        MessageBody="{}",
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in (
                ("SUBSCRIPTION_ID", "callback:dev"),
                ("LAST_STATUS", "500"),
                ("ERROR_MESSAGE", "HTTP 500: b''"),
                ("ATTEMPTS", "8"),
                ("TARGET_ARN", "arn:aws:sqs:x"),
            )
        },
    )
    for _ in range(2):  # a status read takes nothing off the DLQ
        code, status, _ = run(capsys, "callbacks", "--local")
        assert code == 0 and [c["subscription_id"] for c in status["callbacks"]] == ["callback:dev"]
        assert status["outbound"]["dlq"]["visible"] == 1
        assert status["outbound"]["dlq"]["recent"] == [
            {"subscription_id": "callback:dev", "last_status": "500", "error_message": "HTTP 500: b''", "attempts": "8"}
        ]
    code, _, err = run(capsys, "callbacks", "set", "--client", "dev", "--allow-host", "bad host!", "--local")
    assert code == 2 and "allowed hosts" in one_line(err)


# --- listen ----------------------------------------------------------------------------------------
def test_listen_verifies_each_delivery_with_the_official_library(tmp_path):
    import io

    from mangaassist.notifications import signing

    secret, other = signing.new_secret(), signing.new_secret()
    out = io.StringIO()
    started = threading.Event()
    holder = {}

    def ready(server):
        holder["server"] = server
        started.set()

    thread = threading.Thread(
        target=product_ops.listen, args=(0, [other, secret]), kwargs={"out": out, "ready": ready}, daemon=True
    )
    thread.start()
    assert started.wait(5)
    port = holder["server"].server_address[1]
    body = json.dumps({"type": "JobCompleted", "id": "e1"}).encode()

    def post(headers: dict) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/hook", data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post(signing.headers("msg_1", int(time.time()), body, [secret])) == 200
    assert post(signing.headers("msg_2", int(time.time()), body, [signing.new_secret()])) == 401
    assert post(signing.headers("msg_3", int(time.time()) - 3600, body, [secret])) == 401, "an old timestamp"
    holder["server"].shutdown()
    thread.join(5)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["webhook_id"], line["verified"]) for line in lines] == [
        ("msg_1", True),
        ("msg_2", False),
        ("msg_3", False),
    ]
    assert lines[0]["payload"] == {"type": "JobCompleted", "id": "e1"} and lines[0]["path"] == "/hook"


def test_listen_refuses_a_bad_secret_or_none_before_listening(capsys, monkeypatch):
    monkeypatch.setattr(product_ops, "listen", lambda *a, **k: pytest.fail("must not listen"))
    code, _, err = run(capsys, "listen", "--port", "0", "--secret", "nope")
    assert code == 2 and "--secret: a signing secret is whsec_" in one_line(err)
    code, _, err = run(capsys, "listen", "--port", "0")
    assert code == 2 and "--secret whsec_" in one_line(err)


def test_the_models_behind_the_roles_come_from_the_stack_or_the_chat_function(tmp_path, local):
    assert local.models() == {"fast": "local.fast-v1", "fallback": "local.deep-v1", "candidate": "local.candidate-v1"}
    info = dict(local.info)
    info.pop("models")
    (tmp_path / "older.json").write_text(json.dumps(info))
    assert ops.Local(tmp_path / "older.json").models()["fallback"] == "local.deep-v1", "a stack.json without them"
    names = json.loads((ROOT / "terraform" / "tests" / "fixtures" / "names.json").read_text())["names"]
    (tmp_path / "outputs.json").write_text(json.dumps({"names": {"value": names}}))
    cloud = ops.Cloud(str(tmp_path / "outputs.json"), REGION)
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="chat", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=names["functions"]["chat"],
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": {"MODEL_FAST_ID": "haiku", "MODEL_FALLBACK_ID": "sonnet"}},
    )
    assert cloud.models() == {"fast": "haiku", "fallback": "sonnet", "candidate": None}
