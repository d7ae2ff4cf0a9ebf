"""DynamoDB tables as wiring.json describes them (keys, global secondary indexes, TTL), created
the way Terraform's data module creates them: for the local stack and for tests on moto."""
from __future__ import annotations


def create_table_request(table_name: str, spec: dict) -> dict:
    """CreateTable's arguments: on-demand, string keys, every index projecting all attributes."""
    def key_schema(hash_key: str, range_key: str | None) -> list[dict]:
        return [{"AttributeName": hash_key, "KeyType": "HASH"},
                *([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else [])]

    attributes = {spec["hash_key"], *filter(None, [spec.get("range_key")])}
    request = {"TableName": table_name, "BillingMode": "PAY_PER_REQUEST",
               "KeySchema": key_schema(spec["hash_key"], spec.get("range_key"))}
    indexes = []
    for index_name, index in (spec.get("global_secondary_indexes") or {}).items():
        attributes |= {index["hash_key"], *filter(None, [index.get("range_key")])}
        indexes.append({"IndexName": index_name, "KeySchema": key_schema(index["hash_key"], index.get("range_key")),
                        "Projection": {"ProjectionType": "ALL"}})
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    request["AttributeDefinitions"] = [{"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)]
    return request


def create_tables(ddb, names: dict[str, str], tables: dict) -> None:
    """Every table of ``tables`` (wiring.json's) under its deployed name from ``names``."""
    for key, spec in tables.items():
        ddb.create_table(**create_table_request(names[key], spec))
        if spec.get("ttl_attribute"):
            ddb.update_time_to_live(TableName=names[key], TimeToLiveSpecification={
                "Enabled": True, "AttributeName": spec["ttl_attribute"]})
