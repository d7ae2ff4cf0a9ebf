"""The rule targets' dead-letter queues, as the page and ``POST /_local/redrive`` see them.

A redrive here is ``ops.py redrive``'s (mangaassist_dev.redrive), delivering through the router,
so a redriven event shows as delivered in /_local/deliveries.
"""
from __future__ import annotations

from mangaassist_dev.delivery import DeadLetter
from mangaassist_dev.redrive import redrive_queue


class DeadLetters:
    def __init__(self, sqs, dlqs: dict[str, dict], router, wiring):
        self.sqs = sqs
        self.dlqs = dlqs  # "rule/target id" -> {"name", "url"}
        self.router = router
        self.wiring = wiring

    def counts(self) -> list[dict]:
        rows = []
        for key, dlq in self.dlqs.items():
            rule, target_id = key.split("/", 1)
            attributes = self.sqs.get_queue_attributes(QueueUrl=dlq["url"], AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            target = next(t for t in self.wiring.rule(rule).targets if t.id == target_id)
            rows.append({"key": key, "rule": rule, "target": target.resource, "target_id": target_id,
                         "name": dlq["name"], "url": dlq["url"],
                         "visible": int(attributes["ApproximateNumberOfMessages"]),
                         "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"])})
        return rows

    def keys(self, choice: dict) -> list[str] | str:
        """The DLQs a request names ({"dlq": name} | {"rule", "target"} | {"all": true}), or why not."""
        if choice.get("all") is True:
            return list(self.dlqs)
        if isinstance(choice.get("dlq"), str):
            keys = [k for k, d in self.dlqs.items() if choice["dlq"] in (d["name"], d["url"])]
            return keys or f"no target DLQ named {choice['dlq']!r}"
        rule, target = choice.get("rule"), choice.get("target")
        if isinstance(rule, str) and isinstance(target, str):
            try:
                targets = self.wiring.rule(rule).targets
            except KeyError as exc:
                return str(exc.args[0])
            keys = [f"{rule}/{t.id}" for t in targets if target in (t.id, t.resource)]
            return keys or f"rule {rule!r} has no target {target!r}; targets: {', '.join(t.id for t in targets)}"
        return "give dlq, rule and target, or all: true"

    def redrive(self, keys: list[str], max_messages: int | None, dry_run: bool) -> list[dict]:
        def deliver(letter: DeadLetter) -> None:
            rule, target = self.router.target_by_arns(letter.rule_arn, letter.target_arn)
            self.router.redeliver(letter.event, rule, target)

        return [redrive_queue(self.sqs, self.dlqs[key]["url"], self.dlqs[key]["name"], deliver,
                              max_messages=max_messages, dry_run=dry_run).as_dict() for key in keys]
