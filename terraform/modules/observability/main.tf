# Production's eyes: one SNS topic every alarm notifies (subscribers are a variable), an alarm on
# each thing that needs a person, and one dashboard. The DLQ-depth and claim alarms live with
# what they watch (event_bus, webhooks) and notify the same topic.
data "aws_region" "current" {}

locals {
  actions = concat([aws_sns_topic.alarms.arn], var.extra_alarm_actions)
  region  = data.aws_region.current.name
}

resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key; alarm notifications carry alarm names and states only, and var.kms_key_arn takes a customer-managed key whose policy lets CloudWatch in
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "alarms" {
  for_each  = { for s in var.alarm_subscribers : "${s.protocol}:${s.endpoint}" => s }
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = each.value.protocol
  endpoint  = each.value.endpoint
}

# --- Lambda: errors and throttles of every function ------------------------------------------
resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each            = var.function_names
  alarm_name          = "${each.value}-errors"
  alarm_description   = "${each.value} failed more than ${var.thresholds.lambda_errors_per_5_minutes} times in 5 minutes: read its log group /aws/lambda/${each.value}."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.thresholds.lambda_errors_per_5_minutes
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  for_each            = var.function_names
  alarm_name          = "${each.value}-throttles"
  alarm_description   = "${each.value} was throttled: its reserved concurrency or the account's concurrency is exhausted."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# --- API Gateway: 5XX rate and p99 latency ---------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.api.name}-5xx"
  alarm_description   = "More than ${var.thresholds.api_5xx_rate * 100}% of the API's answers were 5XX for 3 of 5 minutes."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = { ApiName = var.api.name, Stage = var.api.stage }
  statistic           = "Average" # 5XXError is 0 or 1 per request: its average is the rate
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.thresholds.api_5xx_rate
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_latency" {
  alarm_name          = "${var.api.name}-p99-latency"
  alarm_description   = "The API's p99 latency was above ${var.thresholds.api_p99_latency_ms} ms for 3 of 5 minutes."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = { ApiName = var.api.name, Stage = var.api.stage }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.thresholds.api_p99_latency_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# --- Models: the share of model calls a fallback answered ------------------------------------
# Every model call emits ModelFallbacks (Powertools EMF: 1 when the fallback model answered
# because the chosen one failed, throttled or had its circuit open, else 0) by model_id, feature
# and service, so its average over every dimension is the fallback rate. A rollout that points a
# feature at a broken or throttled model raises it first (a turn that no model answers is a 503,
# the API 5XX alarm's). The dimensions' values are open-ended (any model id), so the alarm reads
# them all with a Metrics Insights query rather than a list of metrics.
resource "aws_cloudwatch_metric_alarm" "model_errors" {
  alarm_name          = "${var.name_prefix}-model-errors"
  alarm_description   = "More than ${var.thresholds.model_fallback_rate * 100}% of model calls were answered by the fallback model for 3 of 5 minutes: the chosen model fails (a feature flag rollout rolls back on this alarm)."
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.thresholds.model_fallback_rate
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "fallback_rate"
    label       = "share of model calls answered by the fallback"
    expression  = "SELECT AVG(ModelFallbacks) FROM SCHEMA(\"${var.metrics_namespace}\", feature, model_id, service)"
    period      = 60
    return_data = true
  }
}

# --- EventBridge: failed invocations per rule ------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "rule_failed_invocations" {
  for_each            = var.rule_names
  alarm_name          = "${each.value}-failed-invocations"
  alarm_description   = "Rule ${each.value} could not deliver events to a target after its retries: they are in the target's DLQ (ops.py redrive)."
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { EventBusName = var.bus_name, RuleName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# --- DynamoDB: throttled reads and writes per table ------------------------------------------
resource "aws_cloudwatch_metric_alarm" "table_throttles" {
  for_each            = var.table_names
  alarm_name          = "${each.value}-table-throttles"
  alarm_description   = "Table ${each.value} throttled reads or writes: on-demand tables throttle past twice their previous peak or on a hot partition key."
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "throttles"
    expression  = "reads + writes"
    label       = "throttled requests"
    return_data = true
  }
  metric_query {
    id = "reads"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      dimensions  = { TableName = each.value }
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "writes"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      dimensions  = { TableName = each.value }
      stat        = "Sum"
      period      = 300
    }
  }
}

# --- SQS: the oldest message of every target queue --------------------------------------------
resource "aws_cloudwatch_metric_alarm" "queue_age" {
  for_each            = var.queue_names
  alarm_name          = "${each.value}-oldest-message"
  alarm_description   = "The oldest message in ${each.value} waited more than ${var.thresholds.queue_oldest_message_seconds} s: its consumer is failing or cannot keep up."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.thresholds.queue_oldest_message_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# --- The dashboard ----------------------------------------------------------------------------
# Custom metrics come from the functions (Powertools Metrics, EMF, namespace MangaAssist, each
# with Powertools' `service` dimension); SEARCH expressions find every dimension value, so a new
# source, model or feature appears without a change here.
locals {
  search = {
    accepted      = "SEARCH('{${var.metrics_namespace},service,source} MetricName=\"WebhookAccepted\"', 'Sum', 300)"
    refused       = "SEARCH('{${var.metrics_namespace},reason,service,source} MetricName=\"WebhookRefused\"', 'Sum', 300)"
    model_calls   = "SEARCH('{${var.metrics_namespace},feature,model_id,service} MetricName=\"ModelCalls\"', 'Sum', 3600)"
    fallbacks     = "SEARCH('{${var.metrics_namespace},feature,model_id,service} MetricName=\"ModelFallbacks\"', 'Sum', 3600)"
    input_tokens  = "SEARCH('{${var.metrics_namespace},feature,model_id,service} MetricName=\"ModelInputTokens\"', 'Sum', 86400)"
    output_tokens = "SEARCH('{${var.metrics_namespace},feature,model_id,service} MetricName=\"ModelOutputTokens\"', 'Sum', 86400)"
    cost          = "SEARCH('{${var.metrics_namespace},feature,model_id,service} MetricName=\"ModelCostUSD\"', 'Sum', 86400)"
  }
  rules     = values(var.rule_names)
  functions = values(var.function_names)
  dlqs      = values(var.dlq_names)

  widgets = [
    { title = "Webhooks accepted by source (5 min)", metrics = [[{ expression = local.search.accepted, id = "accepted", label = "" }]], stat = "Sum", period = 300 },
    { title = "Webhooks refused by source and reason (5 min)", metrics = [[{ expression = local.search.refused, id = "refused", label = "" }]], stat = "Sum", period = 300 },
    { title = "Events matched per rule (5 min)", metrics = [for r in local.rules : ["AWS/Events", "MatchedEvents", "EventBusName", var.bus_name, "RuleName", r]], stat = "Sum", period = 300 },
    { title = "Deliveries failed per rule (5 min)", metrics = [for r in local.rules : ["AWS/Events", "FailedInvocations", "EventBusName", var.bus_name, "RuleName", r]], stat = "Sum", period = 300 },
    { title = "Dead letters sent: EventBridge per rule, and every DLQ's receipts (5 min)", metrics = concat(
      [for r in local.rules : ["AWS/Events", "InvocationsSentToDlq", "EventBusName", var.bus_name, "RuleName", r]],
      [for q in local.dlqs : ["AWS/SQS", "NumberOfMessagesSent", "QueueName", q]],
    ), stat = "Sum", period = 300 },
    { title = "DLQ depth", metrics = [for q in local.dlqs : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]], stat = "Maximum", period = 60 },
    { title = "Function duration p99 (ms)", metrics = [for f in local.functions : ["AWS/Lambda", "Duration", "FunctionName", f]], stat = "p99", period = 300 },
    { title = "Function errors (5 min)", metrics = [for f in local.functions : ["AWS/Lambda", "Errors", "FunctionName", f]], stat = "Sum", period = 300 },
    { title = "API requests, 4XX and 5XX (5 min)", metrics = [for m in ["Count", "4XXError", "5XXError"] : ["AWS/ApiGateway", m, "ApiName", var.api.name, "Stage", var.api.stage]], stat = "Sum", period = 300 },
    { title = "API latency p99 (ms)", metrics = [["AWS/ApiGateway", "Latency", "ApiName", var.api.name, "Stage", var.api.stage]], stat = "p99", period = 60 },
    { title = "Model calls and fallbacks by model and feature (hour)", metrics = [[{ expression = local.search.model_calls, id = "calls", label = "" }], [{ expression = local.search.fallbacks, id = "fallbacks", label = "" }]], stat = "Sum", period = 3600 },
    { title = "Model tokens per day by model and feature", metrics = [[{ expression = local.search.input_tokens, id = "input", label = "" }], [{ expression = local.search.output_tokens, id = "output", label = "" }]], stat = "Sum", period = 86400 },
    { title = "Model cost per day, USD, by model and feature", metrics = [[{ expression = local.search.cost, id = "cost", label = "" }]], stat = "Sum", period = 86400 },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = [for i, w in local.widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = w.title
        region  = local.region
        view    = "timeSeries"
        stacked = false
        metrics = w.metrics
        stat    = w.stat
        period  = w.period
      }
    }]
  })
}
