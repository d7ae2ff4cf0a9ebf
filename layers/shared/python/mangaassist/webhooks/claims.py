"""Where deliveries are claimed: Powertools' DynamoDB idempotency store, completing a claim
with one PutItem of the whole record.

Powertools completes with an UpdateItem (SET data, expiry, status). Only the claim's holder ever
completes it and the record holds nothing but these attributes, so writing the whole record is
the same change; on DynamoDB it costs the same, and on the local emulator, whose UpdateExpression
parser is its slowest path, it halves the cost of the fourth AWS call every delivery makes.

The completion is written after the answer (mangaassist.after_response): by then the events are on
the bus, so the delivery is accepted whatever becomes of this write, and the partner should not
wait for it, nor be told 503 (and retry into a second set of events) when it fails. Until it
lands, a retry finds the claim in progress and is answered 409; if it never lands (logged), the
in-progress claim lapses at the invocation's deadline and a later retry is processed again.
"""
from __future__ import annotations

import logging

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from mangaassist import after_response

logger = logging.getLogger(__name__)


class DeliveryClaims(DynamoDBPersistenceLayer):
    def _update_record(self, data_record: DataRecord) -> None:
        item = {
            **self._get_key(data_record.idempotency_key),
            self.expiry_attr: {"N": str(data_record.expiry_timestamp)},
            self.status_attr: {"S": data_record.status},
            self.data_attr: {"S": data_record.response_data},
        }
        if self.payload_validation_enabled and data_record.payload_hash:
            item[self.validation_key_attr] = {"S": data_record.payload_hash}
        after_response.defer(lambda: self._complete(item))

    def _complete(self, item: dict) -> None:
        try:
            self.client.put_item(TableName=self.table_name, Item=item)
        except Exception:
            logger.exception("delivery accepted, but its claim was not completed: a retry after the claim "
                             "lapses is processed again", extra={"idempotency_key": item.get(self.key_attr)})
