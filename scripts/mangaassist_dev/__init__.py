"""Development-only code: never in the Lambda layer (scripts/build.py packages layers/ only).

- ``routing``, ``delivery``: the routing table (terraform/wiring.json), retries, DLQs, the
  archive and replay, as the local stack's router and the operator CLI run them (EventBridge's
  matching and input transformers are in the layer, mangaassist.events.patterns and .transform:
  the outbound dispatcher filters and shapes its deliveries with them);
- ``signing``: the partner side of each webhook scheme, for tests and ``ops.py send``;
- ``naming``: how every resource name is derived from the deployment's prefix (Terraform
  derives the same names; tests prove it).
"""
