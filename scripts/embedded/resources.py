"""The AWS resources of terraform/wiring.json, made in the emulator if they are not there yet.

Each is created only when missing: after a restart the emulator's restored state already has
them (with their items, objects and messages), and a resource added to the wiring since is made.
Secrets follow dev-credentials.json: the stack's copy wins.
"""
from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import ClientError
from mangaassist_dev.tables import create_table_request

EXISTS = {"ResourceInUseException", "BucketAlreadyOwnedByYou", "BucketAlreadyExists", "ResourceAlreadyExistsException",
          "ResourceExistsException"}


def _made(call, **kwargs):
    """The call's answer, or None when what it creates exists already."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in EXISTS:
            return None
        raise


def ensure_resources(aws, doc: dict, wiring, names: dict, credentials: dict, region: str, account: str) -> dict:
    """Make what is missing; the queues' and DLQs' URLs and ARNs, as the stack describes them."""
    ddb = aws.client("dynamodb")
    for name, spec in doc.get("tables", {}).items():
        made = _made(ddb.create_table, **create_table_request(names["tables"][name], spec))
        if made and spec.get("ttl_attribute"):
            ddb.update_time_to_live(TableName=names["tables"][name], TimeToLiveSpecification={
                "Enabled": True, "AttributeName": spec["ttl_attribute"]})
    s3 = aws.client("s3")
    for name in doc.get("buckets", {}):
        _made(s3.create_bucket, Bucket=names["buckets"][name], CreateBucketConfiguration={"LocationConstraint": region})
    sqs = aws.client("sqs")
    queues = {"urls": {}, "arns": {}, "dlqs": {}}
    for name, spec in doc.get("queues", {}).items():
        dlq = sqs.create_queue(QueueName=names["queue_dlqs"][name])["QueueUrl"]  # CreateQueue is idempotent
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues["urls"][name] = sqs.create_queue(QueueName=names["queues"][name], Attributes={
            "VisibilityTimeout": str(spec.get("visibility_timeout_seconds", 60)),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": spec.get("max_receive_count", 5)}),
        })["QueueUrl"]
        queues["arns"][name] = f"arn:aws:sqs:{region}:{account}:{names['queues'][name]}"
    for rule in wiring.rules:
        for target in rule.targets:
            key = f"{rule.name}/{target.id}"
            queues["dlqs"][key] = {"name": names["target_dlqs"][key],
                                   "url": sqs.create_queue(QueueName=names["target_dlqs"][key])["QueueUrl"]}
    events = aws.client("events")
    _made(events.create_event_bus, Name=names["bus"])
    bus_arn = f"arn:aws:events:{region}:{account}:event-bus/{names['bus']}"
    for rule in wiring.rules:  # described for `aws events` users; the router delivers
        events.put_rule(Name=names["rules"][rule.name], EventBusName=names["bus"],
                        EventPattern=json.dumps(rule.event_pattern), Description=rule.description)
    archive = doc.get("archive") or {}
    _made(events.create_archive, ArchiveName=names["archive"], EventSourceArn=bus_arn,
          EventPattern=json.dumps(archive.get("event_pattern") or {"source": [{"prefix": ""}]}),
          RetentionDays=archive.get("retention_days", 0))
    sm = aws.client("secretsmanager")
    for name, source in credentials["sources"].items():
        value = json.dumps({"secrets": source["secrets"]})
        secret_id = names["webhook_secrets"][name]
        if _made(sm.create_secret, Name=secret_id, SecretString=value) is None \
                and sm.get_secret_value(SecretId=secret_id)["SecretString"] != value:
            sm.put_secret_value(SecretId=secret_id, SecretString=value)
    return queues


def ensure_flags_profile(aws, names: dict, ids_file: Path) -> dict:
    """The AppConfig application and feature-flags profile `ops.py flags push` creates versions in:
    their ids (moto cannot list applications, so the ids made are kept in ``ids_file``)."""
    appconfig = aws.client("appconfig")
    try:
        ids = json.loads(ids_file.read_text())
        appconfig.get_configuration_profile(ApplicationId=ids["application_id"],
                                            ConfigurationProfileId=ids["profile_id"])
        return ids
    except (OSError, ValueError, KeyError, TypeError, ClientError):
        pass  # a first start, or an emulator state that lost them: make them again
    flags = names["appconfig"]
    app_id = appconfig.create_application(Name=flags["application"])["Id"]
    profile_id = appconfig.create_configuration_profile(
        ApplicationId=app_id, Name=flags["profile"], LocationUri="hosted", Type="AWS.AppConfig.FeatureFlags")["Id"]
    ids = {"application_id": app_id, "profile_id": profile_id}
    ids_file.write_text(json.dumps(ids) + "\n")
    return ids
