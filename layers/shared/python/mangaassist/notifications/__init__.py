"""Outbound notifications: platform events delivered, signed with Standard Webhooks, to the
subscriptions operators manage and to the callback URLs of /v1/generate jobs.

- subscriptions.py: what a subscription is (URL, EventBridge pattern, optional template, secrets,
  enabled) and where it lives (a DynamoDB table; its secrets in Secrets Manager);
- signing.py: the Standard Webhooks headers, one ``v1,`` signature per active secret;
- egress.py: the outbound HTTP request, safe against SSRF (the resolved address is checked and
  pinned at connect time, no redirects, a capped response);
- dispatch.py: events in, deliveries out, retried on Svix's schedule, then dead-lettered.
"""
