# The one naming rule (scripts/mangaassist_dev/naming.py): <prefix>-<key>, the key verbatim from
# wiring.json; never cut or hashed. Instead, name_prefix is refused at plan time when any name
# derived from wiring.json (or a fixed one) would pass its service's limit, so adding a rule,
# function or table keeps the check true without an edit here.
locals {
  account_id_length = 12 # bucket names end with -<account id>
  suffixes = {
    functions   = [for k in keys(local.wiring.functions) : "-${k}"]
    tables      = [for k in keys(local.wiring.tables) : "-${k}"]
    buckets     = [for k in keys(local.wiring.buckets) : "-${replace(k, "_", "-")}-${join("", [for _ in range(local.account_id_length) : "0"])}"]
    queues      = concat([for k in keys(local.wiring.queues) : "-${k}"], [for k in keys(local.wiring.queues) : "-${k}-dlq"])
    target_dlqs = flatten([for r, rule in local.wiring.rules : [for t in keys(rule.targets) : "-dlq-${r}-${t}"]])
    forward     = [for k in keys(var.forwarding) : "-dlq-forward-${k}-bus"]
    rules       = concat([for k in keys(local.wiring.rules) : "-${k}"], [for k in keys(var.forwarding) : "-forward-${k}"])
  }
  # Each service's limit and every suffix its names get. Sources: the services' quotas pages
  # (SQS, Lambda, IAM, S3, OpenSearch Serverless, EventBridge, DynamoDB, Secrets Manager, SNS).
  name_groups = {
    "SQS queue names"                                     = { limit = 80, suffixes = concat(local.suffixes.queues, local.suffixes.target_dlqs, local.suffixes.forward) }
    "Lambda function and IAM role names"                  = { limit = 64, suffixes = concat(local.suffixes.functions, ["-apigw-cloudwatch", "-events-forwarding", "-appconfig-monitor"]) }
    "AppConfig application and deployment strategy names" = { limit = 64, suffixes = ["", "-flags-rollout"] }
    "API Gateway API and authorizer names"                = { limit = 128, suffixes = ["-api", "-websocket", "-websocket-authorizer"] }
    "S3 bucket names"                                     = { limit = 63, suffixes = local.suffixes.buckets }
    "OpenSearch Serverless collection and policy names"   = { limit = 32, suffixes = ["-products", "-enc", "-net", "-data"] }
    "EventBridge rule names"                              = { limit = 64, suffixes = local.suffixes.rules }
    "EventBridge archive names"                           = { limit = 48, suffixes = ["-archive"] }
    "EventBridge schema registry names"                   = { limit = 64, suffixes = ["-contracts"] }
    "DynamoDB table names"                                = { limit = 255, suffixes = local.suffixes.tables }
    "Lambda layer names"                                  = { limit = 140, suffixes = ["-shared"] }
    "Secrets Manager secret names"                        = { limit = 512, suffixes = [for k in keys(local.wiring.sources) : "/webhooks/${k}"] }
    "SNS topic names"                                     = { limit = 256, suffixes = ["-alarms"] }
    "WAF web ACL names and metric names"                  = { limit = 128, suffixes = ["-api", "-rate-per-ip", "-AWSManagedRulesKnownBadInputsRuleSet"] }
    "CloudWatch alarm names (DLQ alarms are the longest)" = { limit = 255, suffixes = [for s in concat(local.suffixes.queues, local.suffixes.target_dlqs, local.suffixes.forward) : "${s}-not-empty"] }
  }
  name_budget = {
    for kind, g in local.name_groups : kind => {
      limit   = g.limit
      suffix  = max(0, [for s in g.suffixes : length(s)]...)
      longest = try([for s in g.suffixes : s if length(s) == max([for x in g.suffixes : length(x)]...)][0], "")
    }
  }
  name_prefix_max_length = min([for b in values(local.name_budget) : b.limit - b.suffix]...)

  # Every name a deployment has, as names.json holds them for one prefix: read from the
  # resources themselves (through the modules' outputs), for `terraform output -json names`.
  names = {
    bus                   = module.event_bus.bus_name
    archive               = module.event_bus.archive_name
    functions             = module.functions.function_names
    tables                = module.data.table_names
    buckets               = module.data.bucket_names
    queues                = module.event_bus.queue_names
    queue_dlqs            = module.event_bus.queue_dlq_names
    rules                 = { for k in keys(local.wiring.rules) : k => module.event_bus.rule_names[k] }
    target_dlqs           = merge([for r, rule in local.wiring.rules : { for t in keys(rule.targets) : "${r}/${t}" => module.event_bus.dlq_names["${r}/${t}"] }]...)
    webhook_secret_prefix = module.webhooks.secret_prefix
    webhook_secrets       = module.webhooks.secret_names
    # Subscriptions' signing secrets are <prefix>/subscriptions/<id>: made at run time, not here.
    notification_secret_prefix = local.notify_secret_prefix
    appconfig                  = { application = module.flags.application_name, profile = module.flags.profile_name }
  }
}
