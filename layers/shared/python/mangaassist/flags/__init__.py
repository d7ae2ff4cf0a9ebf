"""AI rollout under control: feature flags in AWS AppConfig, evaluated with Powertools.

Each AI feature (chat, recommend, generate) has the same set of flags in config/flags.json,
named ``<feature>_<aspect>`` (see decisions.py): on/off (the kill switch), which model, the
answer's token limit, the prompt template version, a daily token budget and what happens past
it, and shadow mode. Rules target a tier (``EQUALS``) or a share of users by a consistent hash of
their id (``MODULO_RANGE`` on ``user_hash``: the same user always lands on the same side).

The flags are read through a store that keeps the last good document (store.py): AppConfig
unreachable, or a document that breaks Powertools' schema, changes nothing that was working; with
no good document yet, the safe defaults in code apply (every feature on, the fast model).
"""
