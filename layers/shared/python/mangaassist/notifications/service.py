"""The container's dispatcher and subscriptions, built once from the settings."""
from __future__ import annotations

from functools import cache

from mangaassist import clients, settings
from mangaassist.notifications.dispatch import Dispatcher
from mangaassist.notifications.subscriptions import Subscriptions


def queue_arn(url: str, region: str) -> str:
    """An SQS queue's ARN from its URL (``.../<account>/<name>``), in the function's region."""
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


@cache
def subscriptions() -> Subscriptions:
    from mangaassist.deps import Deps

    config = settings.notifications()
    # Secrets Manager: only for an event with subscriptions to sign for (cached per subscription)
    return Subscriptions(Deps().table("subscriptions"), clients.lazy("secretsmanager"),
                         secret_prefix=config.secret_prefix, allow_loopback=config.allow_loopback,
                         cache_seconds=config.cache_seconds)


@cache
def dispatcher() -> Dispatcher:
    from mangaassist.deps import Deps

    config, url = settings.notifications(), settings.queue_url("notifications")
    # SQS: only for a delivery to retry or give up on
    return Dispatcher(subscriptions=subscriptions(), sqs=clients.lazy("sqs"), queue_url=url,
                      dlq_url=settings.dlq_url("notifications"), queue_arn=queue_arn(url, settings.runtime().region),
                      publish=Deps().publish, allow_loopback=config.allow_loopback, time_scale=config.time_scale,
                      timeout=config.timeout_seconds, ca_file=config.ca_file)
