"""InferenceCompleted -> daily per-model token and cost counters."""
from __future__ import annotations

from mangaassist.workers.runtime import event_worker
from mangaassist.workers.usage import record_usage

lambda_handler = event_worker(record_usage)
