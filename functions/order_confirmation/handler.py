"""PaymentCompleted -> the order's confirmation, written by the model and stored on the order."""
from __future__ import annotations

from mangaassist.workers.orders import confirm_order
from mangaassist.workers.runtime import event_worker

lambda_handler = event_worker(confirm_order)
