# The custom bus, its archive, the routing table's rules and targets, one DLQ per target, the
# wiring's queues (rule targets or fed by functions) each with its own redrive DLQ,
# optional forwarding rules to other accounts' buses, the schema registry, and an alarm on every DLQ.
locals {
  # Forwarding rules are rules like the wiring's, with one target: another account's bus.
  forwarding_rules = {
    for key, f in var.forwarding : "forward-${key}" => {
      description   = coalesce(f.description, "Forward matching events to ${f.target_bus_arn}")
      event_pattern = f.event_pattern
      targets = {
        bus = {
          type              = "bus"
          arn               = f.target_bus_arn
          function_name     = null
          qualifier         = null
          role_name         = null
          queue             = null
          retry_policy      = f.retry_policy
          input_transformer = null
        }
      }
    }
  }
  rules = merge(var.rules, local.forwarding_rules)

  targets = merge([
    for rule_name, rule in local.rules : {
      for target_id, target in rule.targets : "${rule_name}/${target_id}" => merge(target, {
        rule = rule_name
        id   = target_id
        arn  = target.type == "sqs" ? aws_sqs_queue.target[target.queue].arn : target.arn
      })
    }
  ]...)
  # The naming rule (scripts/mangaassist_dev/naming.py): never cut or hashed; the root module
  # refuses a prefix that would make any of these longer than SQS's 80 characters.
  dlq_name = { for k, t in local.targets : k => "${var.name_prefix}-dlq-${t.rule}-${t.id}" }
  sse      = var.kms_key_arn == null
}

resource "aws_cloudwatch_event_bus" "this" {
  name = "${var.name_prefix}-bus"
  tags = var.tags
}

resource "aws_cloudwatch_event_archive" "this" {
  name             = "${var.name_prefix}-archive"
  description      = "Every event the pattern matches, for replay (replays themselves are never archived)."
  event_source_arn = aws_cloudwatch_event_bus.this.arn
  event_pattern    = var.archive.event_pattern
  retention_days   = var.archive.retention_days
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each       = local.rules
  name           = "${var.name_prefix}-${each.key}"
  description    = each.value.description
  event_bus_name = aws_cloudwatch_event_bus.this.name
  event_pattern  = each.value.event_pattern
  tags           = var.tags
}

resource "aws_sqs_queue" "target_dlq" {
  for_each                  = var.queues
  name                      = "${var.name_prefix}-${each.key}-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = local.sse ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

resource "aws_sqs_queue" "target" {
  for_each                   = var.queues
  name                       = "${var.name_prefix}-${each.key}"
  visibility_timeout_seconds = each.value.visibility_timeout_seconds
  message_retention_seconds  = 345600
  sqs_managed_sse_enabled    = local.sse ? true : null
  kms_master_key_id          = var.kms_key_arn
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.target_dlq[each.key].arn
    maxReceiveCount     = each.value.max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue" "dlq" {
  for_each                  = local.targets
  name                      = local.dlq_name[each.key]
  message_retention_seconds = 1209600 # 14 days, SQS's maximum: time to redrive
  sqs_managed_sse_enabled   = local.sse ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = merge(var.tags, { rule = each.value.rule, target = each.value.id })
}

# Only EventBridge, and only the rules that deliver to a queue, may send to it: a target queue
# takes its rules' events, a DLQ only its own rule's dead letters. Lambda's failure records come
# with the function's role, which its own policy allows (below). A queue no rule targets (one that
# functions feed, like jobs) gets no queue policy: only roles of this account that their own
# policies allow (queue:<q>:send) can send to it.
locals {
  queue_rules = { for q, _ in var.queues : q => [for t in values(local.targets) : aws_cloudwatch_event_rule.this[t.rule].arn if t.type == "sqs" && t.queue == q] }
  queue_senders = merge(
    { for q, _ in var.queues : "queue:${q}" => {
      arn   = aws_sqs_queue.target[q].arn
      url   = aws_sqs_queue.target[q].id
      rules = local.queue_rules[q]
    } if length([for t in values(local.targets) : t if t.type == "sqs" && t.queue == q]) > 0 },
    { for k, t in local.targets : "dlq:${k}" => {
      arn   = aws_sqs_queue.dlq[k].arn
      url   = aws_sqs_queue.dlq[k].id
      rules = [aws_cloudwatch_event_rule.this[t.rule].arn]
    } },
  )
}

data "aws_iam_policy_document" "queue" {
  for_each = local.queue_senders
  statement {
    sid       = "OnlyItsRules"
    actions   = ["sqs:SendMessage"]
    resources = [each.value.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = each.value.rules
    }
  }
}

resource "aws_sqs_queue_policy" "queue" {
  for_each  = local.queue_senders
  queue_url = each.value.url
  policy    = data.aws_iam_policy_document.queue[each.key].json
}

resource "aws_cloudwatch_event_target" "this" {
  for_each       = local.targets
  rule           = aws_cloudwatch_event_rule.this[each.value.rule].name
  event_bus_name = aws_cloudwatch_event_bus.this.name
  target_id      = each.value.id
  arn            = each.value.arn
  role_arn       = each.value.type == "bus" ? aws_iam_role.forwarding[0].arn : null

  retry_policy {
    maximum_retry_attempts       = each.value.retry_policy.maximum_retry_attempts
    maximum_event_age_in_seconds = each.value.retry_policy.maximum_event_age_in_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq[each.key].arn
  }

  dynamic "input_transformer" {
    for_each = each.value.input_transformer == null ? [] : [each.value.input_transformer]
    content {
      input_paths    = input_transformer.value.input_paths
      input_template = input_transformer.value.input_template
    }
  }
}

# A Lambda target is the function's alias (its qualifier); only its rule may invoke it.
resource "aws_lambda_permission" "events" {
  for_each      = { for k, t in local.targets : k => t if t.type == "lambda" }
  statement_id  = "events-${replace(each.key, "/", "-")}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function_name
  qualifier     = each.value.qualifier
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.value.rule].arn
}

# Cross-account forwarding: EventBridge needs a role allowed to put events on the target buses
# (and the target bus's resource policy must let this account in: the other account's side).
data "aws_iam_policy_document" "forwarding_assume" {
  count = length(var.forwarding) > 0 ? 1 : 0
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for k, _ in local.forwarding_rules : aws_cloudwatch_event_rule.this[k].arn]
    }
  }
}

resource "aws_iam_role" "forwarding" {
  count              = length(var.forwarding) > 0 ? 1 : 0
  name               = "${var.name_prefix}-events-forwarding"
  assume_role_policy = data.aws_iam_policy_document.forwarding_assume[0].json
  tags               = var.tags
}

resource "aws_iam_role_policy" "forwarding" {
  count = length(var.forwarding) > 0 ? 1 : 0
  name  = "put-events-on-target-buses"
  role  = aws_iam_role.forwarding[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Sid = "PutEventsOnTargetBuses", Effect = "Allow", Action = "events:PutEvents", Resource = distinct([for f in values(var.forwarding) : f.target_bus_arn]) }]
  })
}

resource "aws_schemas_registry" "this" {
  count       = var.create_schema_registry ? 1 : 0
  name        = "${var.name_prefix}-contracts"
  description = "The JSON Schemas in schemas/: event details, webhook payloads and the envelope."
  tags        = var.tags
}

resource "aws_schemas_schema" "this" {
  for_each      = var.create_schema_registry ? var.schemas : {}
  name          = each.key
  registry_name = aws_schemas_registry.this[0].name
  type          = "JSONSchemaDraft4"
  content       = each.value
  tags          = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each            = merge({ for k, q in aws_sqs_queue.dlq : k => q.name }, { for k, q in aws_sqs_queue.target_dlq : "queue:${k}" => q.name })
  alarm_name          = "${each.value}-not-empty"
  alarm_description   = "Dead letters waiting: inspect, fix the cause, then `scripts/ops.py redrive --dlq ${each.value}`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.dlq_alarm_actions
  ok_actions          = var.dlq_alarm_actions
  tags                = var.tags
}

# EventBridge hands Lambda targets to Lambda's asynchronous invocation, so a function's own error
# is retried by Lambda, not by the rule's retry policy, and then dropped unless it has a failure
# destination. Each target function's failures go to its target's DLQ (as Lambda's destination
# record, which `ops.py redrive` understands), so an accepted event is never silently lost.
locals {
  lambda_targets = {
    for k, t in local.targets : t.function_name => merge(t, { key = k })... if t.type == "lambda"
  }
  # A function targeted by several rules keeps the first target's DLQ (by rule/target name).
  failure_destinations = { for fn, ts in local.lambda_targets : fn => ts[0] }
}

# Lambda's failure destinations write with the function's own role: only to its own DLQ.
resource "aws_iam_role_policy" "failure_destination" {
  for_each = local.failure_destinations
  name     = "failure-destination"
  role     = each.value.role_name
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Sid = "SendFailedInvocations", Effect = "Allow", Action = "sqs:SendMessage", Resource = aws_sqs_queue.dlq[each.value.key].arn }]
  })
}

resource "aws_lambda_function_event_invoke_config" "target" {
  for_each                     = local.failure_destinations
  function_name                = each.key
  qualifier                    = each.value.qualifier
  maximum_retry_attempts       = min(2, each.value.retry_policy.maximum_retry_attempts)
  maximum_event_age_in_seconds = max(60, min(21600, each.value.retry_policy.maximum_event_age_in_seconds))

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq[each.value.key].arn
    }
  }

  # Lambda checks, when the config is written, that the function's role may send to the
  # destination: the grant must exist first.
  depends_on = [aws_iam_role_policy.failure_destination]
}
