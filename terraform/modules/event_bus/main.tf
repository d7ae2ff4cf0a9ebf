# The custom bus, its archive, the routing table's rules and targets, one DLQ per target,
# the schema registry, and alarms on every DLQ.
locals {
  targets = merge([
    for rule_name, rule in var.rules : {
      for target_id, target in rule.targets : "${rule_name}/${target_id}" => merge(target, {
        rule = rule_name
        id   = target_id
        arn  = target.type == "sqs" ? aws_sqs_queue.target[target.queue].arn : target.arn
      })
    }
  ]...)
  # Queue names are at most 80 characters; rule/target keys are short, the hash keeps them unique.
  dlq_name = { for k, t in local.targets : k => "${var.name_prefix}-dlq-${substr(replace(k, "/", "-"), 0, 50)}-${substr(sha1(k), 0, 6)}" }
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
  for_each       = var.rules
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
# takes its rules' events, a DLQ only its own rule's dead letters.
locals {
  queue_senders = merge(
    { for q, _ in var.queues : "queue:${q}" => {
      arn   = aws_sqs_queue.target[q].arn
      url   = aws_sqs_queue.target[q].id
      rules = [for t in values(local.targets) : aws_cloudwatch_event_rule.this[t.rule].arn if t.type == "sqs" && t.queue == q]
    } },
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

resource "aws_lambda_permission" "events" {
  for_each      = { for k, t in local.targets : k => t if t.type == "lambda" }
  statement_id  = "events-${replace(each.key, "/", "-")}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.value.rule].arn
}

resource "aws_schemas_registry" "this" {
  name        = "${var.name_prefix}-contracts"
  description = "The JSON Schemas in schemas/: event details, webhook payloads and the envelope."
  tags        = var.tags
}

resource "aws_schemas_schema" "this" {
  for_each      = var.schemas
  name          = each.key
  registry_name = aws_schemas_registry.this.name
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

resource "aws_lambda_function_event_invoke_config" "target" {
  for_each                     = local.failure_destinations
  function_name                = each.key
  maximum_retry_attempts       = min(2, each.value.retry_policy.maximum_retry_attempts)
  maximum_event_age_in_seconds = max(60, min(21600, each.value.retry_policy.maximum_event_age_in_seconds))

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq[each.value.key].arn
    }
  }
}
