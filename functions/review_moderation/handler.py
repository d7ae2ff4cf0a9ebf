"""ReviewSubmitted -> moderation and sentiment; severe reviews are quarantined and flagged."""
from __future__ import annotations

from mangaassist.workers.moderation import moderate_review
from mangaassist.workers.runtime import event_worker

lambda_handler = event_worker(moderate_review)
