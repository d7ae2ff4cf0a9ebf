"""Development-only code: never in the Lambda layer (scripts/build.py packages layers/ only).

- ``patterns``, ``routing``, ``delivery``, ``transform``: EventBridge's matching, the routing
  table (terraform/wiring.json), retries/DLQs/archive/replay and input transformers, as the
  local stack's router and the operator CLI run them;
- ``signing``: the partner side of each webhook scheme, for tests and ``ops.py send``;
- ``naming``: how every resource name is derived from the deployment's prefix (Terraform
  derives the same names; tests prove it).
"""
