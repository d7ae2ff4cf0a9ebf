"""What every bus worker does around its own logic.

- Validates the envelope and the detail against schemas/ before doing anything.
- Runs once per event: EventBridge delivers at least once, so the work is claimed in DynamoDB
  (Powertools idempotency) keyed on the event id and, for replays, the replay name — a replay is
  meant to run the work again, a duplicate delivery is not.
- Lets failures raise: the claim is released and EventBridge's retry policy, then the target's
  DLQ, take over.
"""
from __future__ import annotations

from collections.abc import Callable

from mangaassist import clients, settings
from mangaassist.contracts import validate_detail, validate_envelope

IDEMPOTENCY_TTL = 3 * 24 * 3600  # beyond EventBridge's 24 h maximum event age


def event_worker(handle: Callable[[dict], dict], *, persistence=None):
    """Wrap ``handle(event) -> result`` into ``(event, context) -> result`` with the above."""
    state: dict = {}

    def claimed(event: dict, context=None) -> dict:
        if "run" not in state:  # built on first use: one persistence layer per worker, env read at run time
            from aws_lambda_powertools.utilities.idempotency import (
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            config = IdempotencyConfig(event_key_jmespath='[id, "replay-name"]', raise_on_no_idempotency_key=True,
                                       expires_after_seconds=IDEMPOTENCY_TTL)
            store = persistence or DynamoDBPersistenceLayer(table_name=settings.table("idempotency"),
                                                            boto3_client=clients.client("dynamodb"))
            state["config"] = config
            state["run"] = idempotent_function(data_keyword_argument="event", persistence_store=store,
                                               config=config)(_validated(handle))
        if context is not None:
            state["config"].register_lambda_context(context)
        return state["run"](event=event)

    claimed.__name__ = getattr(handle, "__name__", "worker")
    return claimed


def _validated(handle):
    def run(event: dict) -> dict:
        validate_envelope(event)
        validate_detail(event["source"], event["detail-type"], event["detail"])
        return handle(event)

    run.__qualname__ = getattr(handle, "__qualname__", "worker")  # names the idempotency key
    return run
