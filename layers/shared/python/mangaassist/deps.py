"""What handlers and workers talk to, created once per container and replaceable in tests.

Lambda reuses a container for many invocations, so the data access objects, the model
provider, the embedder and the vector store are built on first use and kept; tests pass their
own (a subclass that sets the attributes).
"""
from __future__ import annotations

from functools import cached_property

from mangaassist import clients, settings
from mangaassist.dal import from_dynamo, to_dynamo  # noqa: F401  (re-exported for the workers' callers)


class Deps:
    @cached_property
    def dynamodb_client(self):
        """The low-level client: every table's calls go through it (mangaassist.dal.table)."""
        return clients.client("dynamodb")

    @cached_property
    def _tables(self) -> dict:
        return {}

    def table(self, name: str):
        """A table by its wiring.json key, kept per name, on the shared low-level client."""
        if name not in self._tables:
            from mangaassist.dal.table import Table

            self._tables[name] = Table(self.dynamodb_client, settings.table(name))
        return self._tables[name]

    @cached_property
    def orders(self):
        from mangaassist.dal.orders import Orders

        return Orders(self.table("orders"))

    @cached_property
    def products(self):
        from mangaassist.dal.products import Products

        return Products(self.table("products"))

    @cached_property
    def reviews(self):
        from mangaassist.dal.reviews import Reviews

        return Reviews(self.table("reviews"))

    @cached_property
    def usage(self):
        from mangaassist.dal.usage import UsageCounters

        return UsageCounters(settings.table("usage"), self.dynamodb_client)

    @cached_property
    def sessions(self):
        from mangaassist.chat.turn import MAX_SESSION_MESSAGES, SESSION_TTL_SECONDS
        from mangaassist.dal.sessions import Sessions

        return Sessions(self.table("sessions"), ttl_seconds=SESSION_TTL_SECONDS, max_turns=MAX_SESSION_MESSAGES)

    @cached_property
    def connections(self):
        from mangaassist.dal.connections import Connections

        return Connections(self.table("connections"))

    @cached_property
    def jobs(self):
        from mangaassist.dal.jobs import Jobs
        from mangaassist.jobs import JOB_TTL_SECONDS

        return Jobs(self.table("jobs"), ttl_seconds=JOB_TTL_SECONDS)

    @cached_property
    def provider(self):
        """The fast model first, the fallback model when it fails."""
        from mangaassist.models import get_provider

        return get_provider()

    def provider_for(self, model_id: str, only: bool = False):
        """A provider with ``model_id`` first (the flags' choice), then the configured fallbacks;
        ``only``: that model alone (a shadow call)."""
        from mangaassist.models import get_provider

        return get_provider(first=model_id, only=only)

    @cached_property
    def flags(self):
        from mangaassist.flags.decisions import flag_book

        return flag_book()

    @cached_property
    def budgets(self):
        from mangaassist.flags.budget import Budgets

        return Budgets(self.usage)


    @cached_property
    def embedder(self):
        from mangaassist.search.embeddings import get_embedder

        return get_embedder()

    @cached_property
    def store(self):
        from mangaassist.search import get_vector_store

        store = get_vector_store()
        store.ensure_index()
        return store

    def publish(self, events) -> list[str]:
        from mangaassist.events.publisher import publish

        return publish(events)
