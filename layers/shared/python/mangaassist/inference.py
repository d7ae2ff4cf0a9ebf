"""What every model call leaves behind: an InferenceCompleted event for the usage counters and
the analytics sink, and the model metrics for the dashboard (mangaassist.metrics)."""
from __future__ import annotations

from mangaassist import metrics
from mangaassist.events.publisher import Event
from mangaassist.models import Completion, inference_event


def inference_completed(completion: Completion, *, request_id: str, feature: str,
                        correlation_id: str | None = None, **extra) -> Event:
    """The call's ``mangaassist.ai/InferenceCompleted`` event (``extra`` adds optional fields);
    its metrics are emitted now."""
    metrics.model_call(completion, feature)
    detail = inference_event(completion, request_id=request_id, feature=feature, correlation_id=correlation_id)
    return Event("mangaassist.ai", "InferenceCompleted", {**detail, **extra})
