#!/usr/bin/env python3
"""`make deploy-test`: prove `make build && terraform apply` works on a first apply, offline.

Starts a fresh moto server on a free loopback port, copies the Terraform (root module, modules,
wiring, lock file) into a temporary folder of its own, so a developer's `.terraform/` and state
are never touched, initialises it through the provider mirror (scripts/terraform_init.sh), then:

1. `terraform apply` of the root module with environments/dev.tfvars;
2. `terraform plan -detailed-exitcode`: it must be empty, except the differences listed in
   KNOWN_DIFFERENCES below, each named with moto's reason;
3. `terraform destroy`;

and stops the server. The provider reaches moto through ``AWS_ENDPOINT_URL`` and a provider
override file in the copy (dummy credentials, path-style S3). What moto does not implement is
switched off by the root module's variables that exist for that purpose (DEPLOY_TEST_VARS);
nothing in the modules is edited. Three moto gaps on the way are filled in the test's own moto
(the functions named below), each where moto departs from AWS's API.

The build is the repository's (`make build`). A function that wiring.json deploys but that has no
folder under functions/ yet (its handler is still being written) gets a stand-in zip in the
copy's own build folder, said aloud, so the test proves the Terraform for it; `terraform apply`
outside this test refuses such a build (output build_version's precondition).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Root-module variables documented as emulator switches (terraform/variables.tf).
DEPLOY_TEST_VARS = {
    "enable_schema_registry": False,  # moto answers 5xx for the EventBridge schema registry
    "enable_search_data_access_policy": False,  # ... and for OpenSearch Serverless access policies
    "enable_flags_deployment": False,  # moto has no AppConfig environments, strategies or deployments
    "enable_websocket_deployment": False,  # ... nor API Gateway v2 deployments
}

STAND_IN_HANDLER = """\
# A stand-in written by scripts/deploy_test.py: functions/{name}/ does not exist yet.
def lambda_handler(event, context):
    raise RuntimeError("functions/{name} is not built: this is make deploy-test's stand-in")
"""

# What the second plan may still change after a clean apply: resource address ([*] is any key) -> the
# attributes that may differ, and why. Each is moto answering differently from AWS, not a defect
# of the module; any other attribute or resource that changes fails the test.
KNOWN_DIFFERENCES: dict[str, tuple[frozenset[str], str]] = {
    "module.functions.aws_lambda_function.function[*]": (
        frozenset({"logging_config", "version", "qualified_arn", "qualified_invoke_arn"}),
        "moto omits LoggingConfig (JSON format, log group) in GetFunction, so the provider sets it again; "
        "with publish = true that update publishes a new version",
    ),
    "module.functions.aws_lambda_alias.live[*]": (
        frozenset({"function_version"}),
        "follows the version the function's LoggingConfig update above publishes",
    ),
    "aws_lambda_event_source_mapping.queue[*]": (
        frozenset({"function_name"}),
        "moto answers the alias ARN (…:live) the mapping was created with as the version it points to (…:1); "
        "AWS keeps the qualifier as given",
    ),
    "module.event_bus.aws_sqs_queue.target[*]": (
        frozenset({"redrive_policy"}),
        "moto returns RedrivePolicy as JSON with spaces after separators; AWS returns it compact, "
        "as jsonencode writes it",
    ),
}

PROVIDER_OVERRIDE = """\
# Written by scripts/deploy_test.py into its own copy: the AWS provider talks to moto
# (AWS_ENDPOINT_URL) with dummy credentials.
provider "aws" {
  access_key                  = "deploy-test"
  secret_key                  = "deploy-test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
}
"""


class DeployTestError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tolerate_an_encryption_policy_without_kms_arn() -> None:
    """moto 5.2.5 reads ``KmsARN`` from a collection's encryption policy unconditionally (a
    KeyError, answered as a 500 that the provider retries for minutes); AWS's own examples, and
    the search module, omit the key with ``AWSOwnedKey: true``. Fill it in moto, not the module."""
    from moto.opensearchserverless import models

    original = models.Collection.__init__
    if getattr(original, "deploy_test_patch", False):
        return

    def init(self, *args, policy, **kwargs):
        if not isinstance(policy, dict) or "KmsARN" not in policy:
            policy = {**(policy if isinstance(policy, dict) else {}), "KmsARN": None}
        original(self, *args, policy=policy, **kwargs)

    init.deploy_test_patch = True
    models.Collection.__init__ = init


def clear_the_api_gateway_role_without_a_value() -> None:
    """Destroying ``aws_api_gateway_account`` (reset_on_delete) sends ``replace
    /cloudwatchRoleArn`` with no value, which clears it on AWS; moto 5.2.5 reads ``op["value"]``
    (a KeyError, a 500 the provider retries for minutes). Read a missing value as empty."""
    from moto.apigateway import models

    original = models.Account.apply_patch_operations
    if getattr(original, "deploy_test_patch", False):
        return

    def apply_patch_operations(self, patch_operations):
        ops = [op if "value" in op or "/cloudwatchRoleArn" not in op.get("path", "") else {**op, "value": None}
               for op in patch_operations]
        return original(self, ops)

    apply_patch_operations.deploy_test_patch = True
    models.Account.apply_patch_operations = apply_patch_operations


def delete_security_policies() -> None:
    """moto 5.2.5 creates OpenSearch Serverless security policies but cannot delete them
    (NotImplementedError, a 500 the provider retries): delete by name and type, as AWS does."""
    import json

    from moto.opensearchserverless.responses import OpenSearchServiceServerlessResponse

    if hasattr(OpenSearchServiceServerlessResponse, "delete_security_policy"):
        return

    def delete_security_policy(self) -> str:
        params = json.loads(self.body)
        policies = self.opensearchserverless_backend.security_policies
        for token, policy in list(policies.items()):
            if policy.name == params.get("name") and policy.type == params.get("type"):
                del policies[token]
        return "{}"

    OpenSearchServiceServerlessResponse.delete_security_policy = delete_security_policy


def start_moto(port: int):
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    # AWS-managed IAM policies (API Gateway's AmazonAPIGatewayPushToCloudWatchLogs) exist on AWS;
    # moto has them only when asked to load them.
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    tolerate_an_encryption_policy_without_kms_arn()
    clear_the_api_gateway_role_without_a_value()
    delete_security_policies()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def prepare(work: Path) -> Path:
    """A copy of what a fresh clone has for Terraform; returns the root module's folder."""
    shutil.copytree(ROOT / "terraform", work / "terraform",
                    ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "backend.tf", "tests"))
    (work / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "terraform_init.sh", work / "scripts" / "terraform_init.sh")
    # The root module reads ../schemas and ../build/manifest.json.
    (work / "schemas").symlink_to(ROOT / "schemas")
    (work / "config").symlink_to(ROOT / "config")
    stand_ins = link_build(ROOT / "build", work / "build", ROOT / "terraform" / "wiring.json")
    if stand_ins:
        print(f"  stand-in zips for functions wiring.json deploys but functions/ lacks: {', '.join(stand_ins)}",
              flush=True)
    (work / "terraform" / "deploy_test_override.tf").write_text(PROVIDER_OVERRIDE)
    (work / "terraform" / "deploy_test.auto.tfvars.json").write_text(json.dumps(DEPLOY_TEST_VARS, indent=2))
    return work / "terraform"


def link_build(build: Path, dest: Path, wiring: Path) -> list[str]:
    """The build as the copy sees it: every artifact linked from ``build``, a manifest of its own,
    and a stand-in zip for each function ``wiring`` deploys that the build has none for. Returns
    the stand-ins' names."""
    import base64
    import hashlib
    import zipfile

    manifest = json.loads((build / "manifest.json").read_text())
    (dest / "functions").mkdir(parents=True)
    (dest / "layers").symlink_to(build / "layers")
    for entry in manifest["functions"].values():
        (dest / entry["path"]).symlink_to(build / entry["path"])
    stand_ins = sorted(set(json.loads(wiring.read_text())["functions"]) - set(manifest["functions"]))
    for name in stand_ins:
        path = dest / "functions" / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            info = zipfile.ZipInfo("handler.py", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            zf.writestr(info, STAND_IN_HANDLER.format(name=name))
        data = path.read_bytes()
        manifest["functions"][name] = {"path": f"functions/{name}.zip", "size": len(data), "unzipped_size": 0,
                                       "source_code_hash": base64.b64encode(hashlib.sha256(data).digest()).decode(),
                                       "stand_in": True}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return stand_ins


def terraform_env(endpoint: str, work: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "deploy-test",
        "AWS_SECRET_ACCESS_KEY": "deploy-test",
        "AWS_REGION": "ap-northeast-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    })
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", "TF_DATA_DIR", "TF_WORKSPACE"):
        env.pop(name, None)
    config = env.get("TF_CLI_CONFIG_FILE")
    if config is not None and not Path(config).is_file():
        env.pop("TF_CLI_CONFIG_FILE")  # a missing file only makes terraform warn on every call
    env["TF_LOG_PATH"] = str(work / "terraform.log") if env.get("TF_LOG") else ""
    return env


def run(cmd: list[str], cwd: Path, env: dict, log: Path, ok=(0,)) -> int:
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        rc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    print(f"  {' '.join(cmd[:2]):<22} exit {rc}  {time.monotonic() - started:6.1f} s", flush=True)
    if rc not in ok:
        tail = log.read_text().splitlines()[-60:]
        raise DeployTestError(f"{' '.join(cmd)} failed (exit {rc}):\n" + "\n".join(tail))
    return rc


def changed_resources(plan_json: dict) -> dict[str, dict]:
    """Address -> {actions, attributes} of every resource the plan would change."""
    changes = {}
    for resource in plan_json.get("resource_changes", []):
        change = resource["change"]
        if change["actions"] in (["no-op"], ["read"]):
            continue
        before, after = change.get("before") or {}, change.get("after") or {}
        unknown = change.get("after_unknown") or {}
        attributes = {k for k in set(before) | set(after) if before.get(k) != after.get(k) or unknown.get(k) is True}
        changes[resource["address"]] = {"actions": change["actions"], "attributes": sorted(attributes)}
    return changes


def address_matches(address: str, pattern: str) -> bool:
    """``pattern`` is a resource address in which ``[*]`` stands for any one instance key."""
    regex = re.escape(pattern).replace(re.escape("[*]"), r"\[[^\]]+\]")
    return re.fullmatch(regex, address) is not None


def classify(changes: dict[str, dict], known: dict[str, tuple[frozenset[str], str]]) -> tuple[dict, dict]:
    """Split changes into (listed: address -> reason, unlisted: address -> change).

    A change is listed when its address matches a known pattern, it is an in-place update, and
    every attribute it changes is one the pattern allows.
    """
    listed, unlisted = {}, {}
    for address, change in changes.items():
        for pattern, (attributes, reason) in known.items():
            if (address_matches(address, pattern) and change["actions"] == ["update"]
                    and set(change["attributes"]) <= attributes):
                listed[address] = reason
                break
        else:
            unlisted[address] = change
    return listed, unlisted


def deploy_test(keep: bool = False) -> dict:
    if not (ROOT / "build" / "manifest.json").is_file():
        raise DeployTestError("build/manifest.json is missing: run `make build` first (make deploy-test does)")
    summary: dict = {}
    started = time.monotonic()
    port = free_port()
    server = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="mangaassist-deploy-test-"))
    log = work / "deploy-test.log"
    print(f"deploy test: moto on {endpoint}, working copy {work}", flush=True)
    try:
        tf = prepare(work)
        env = terraform_env(endpoint, work)
        var_file = "-var-file=environments/dev.tfvars"
        run([str(work / "scripts" / "terraform_init.sh")], work, env, log)
        run(["terraform", "apply", "-auto-approve", "-no-color", var_file], tf, env, log)
        summary["resources"] = _count_resources(tf, env)
        rc = run(["terraform", "plan", "-detailed-exitcode", "-no-color", "-out=second.plan", var_file],
                 tf, env, log, ok=(0, 2))
        changes = {}
        if rc == 2:
            shown = subprocess.run(["terraform", "show", "-json", "second.plan"], cwd=tf, env=env,
                                   capture_output=True, text=True, check=True)
            changes = changed_resources(json.loads(shown.stdout))
        listed, unlisted = classify(changes, KNOWN_DIFFERENCES)
        summary["second_plan"] = {"listed": listed, "unlisted": unlisted}
        for pattern, (_, reason) in KNOWN_DIFFERENCES.items():
            hits = [a for a in listed if address_matches(a, pattern)]
            if hits:
                print(f"  listed difference: {pattern} ({len(hits)}): {reason}")
        if unlisted:
            raise DeployTestError("the second plan is not empty: " + "; ".join(
                f"{a} ({'/'.join(c['actions'])}: {', '.join(c['attributes'])})" for a, c in sorted(unlisted.items()))
                + f"\n(see {log} and `terraform show second.plan` in {tf})")
        run(["terraform", "destroy", "-auto-approve", "-no-color", var_file], tf, env, log)
        left = subprocess.run(["terraform", "state", "list"], cwd=tf, env=env, capture_output=True, text=True)
        if left.stdout.strip():
            raise DeployTestError(f"destroy left resources in the state:\n{left.stdout}")
        summary["seconds"] = round(time.monotonic() - started, 1)
        return summary
    except DeployTestError:
        keep = True  # leave the copy and its log for a look
        raise
    finally:
        server.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _count_resources(tf: Path, env: dict) -> int:
    listed = subprocess.run(["terraform", "state", "list"], cwd=tf, env=env, capture_output=True, text=True, check=True)
    return len([line for line in listed.stdout.splitlines() if line and not line.startswith("data.")
                and ".data." not in line])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the working copy (state, logs) afterwards")
    args = parser.parse_args(argv)
    try:
        summary = deploy_test(keep=args.keep)
    except DeployTestError as exc:
        print(f"deploy test FAILED: {exc}", file=sys.stderr)
        return 1
    listed = summary["second_plan"]["listed"]
    print(f"deploy test passed in {summary['seconds']} s: {summary['resources']} resources applied, "
          f"second plan empty{f' but for {len(listed)} listed moto differences' if listed else ''}, destroyed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
