"""Powertools' AppConfigStore, holding on to the last document that was good.

AppConfig's data API (StartConfigurationSession, GetLatestConfiguration) is called at most once
per ``max_age`` seconds per container (Powertools' cache). When a fetch fails or the document
breaks the feature-flag schema, the last good document is served and the failure is logged and
counted (the ``FlagsFallback`` metric); with none, ConfigurationStoreError tells FeatureFlags to
answer each flag's default from code. A bad deployment is therefore never a 5xx.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError
from aws_lambda_powertools.utilities.feature_flags.schema import SchemaValidator

from mangaassist import metrics

logger = logging.getLogger(__name__)


class LastGoodStore(StoreProvider):
    def __init__(self, inner: StoreProvider, *, retry_seconds: float = 5.0, clock=time.monotonic):
        super().__init__()
        self.inner = inner
        self.retry_seconds = retry_seconds  # after a failure, how long the last good document is served alone
        self.clock = clock
        self._good: dict[str, Any] | None = None
        self._failed_at: float | None = None

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self.get_configuration()

    def get_configuration(self) -> dict[str, Any]:
        if self._failed_at is not None and self.clock() - self._failed_at < self.retry_seconds:
            if self._good is None:  # AppConfig just failed: do not wait on it for every request
                raise ConfigurationStoreError("no feature flags yet")
            return self._good
        try:
            document = self.inner.get_configuration()
            SchemaValidator(document).validate()
        except Exception as exc:  # unreachable, denied, not JSON, not the schema: all the same to a request
            self._failed_at = self.clock()
            metrics.emit({"reason": type(exc).__name__}, {"FlagsFallback": ("Count", 1)})
            if self._good is None:
                logger.warning("feature flags unavailable and none read before: code defaults apply (%s)", exc)
                raise ConfigurationStoreError("no feature flags yet") from exc
            logger.warning("feature flags unavailable or invalid: the last good document stays (%s)", exc)
            return self._good
        self._good, self._failed_at = document, None
        return document
