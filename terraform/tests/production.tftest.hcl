# Production's eyes, module by module: aliases and concurrency, the API's logs, throttles, X-Ray
# and WAF, alarms into one topic, the dashboard, cross-account forwarding.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  manifest_path = "tests/fixtures/manifest.json"
  name_prefix   = "mangaassist-test"
}

run "functions_get_an_alias_tracing_and_provisioned_concurrency_where_asked" {
  command = apply
  module {
    source = "./modules/functions"
  }
  variables {
    layer = { filename = "l.zip", source_code_hash = "bA==" }
    functions = {
      ingress = { filename = "i.zip", source_code_hash = "aQ==", reserved_concurrency = 20, provisioned_concurrency = 5 }
      worker  = { filename = "w.zip", source_code_hash = "dw==", reserved_concurrency = 10 }
    }
  }

  assert {
    condition     = alltrue([for k, a in aws_lambda_alias.live : a.name == "live" && a.function_version == aws_lambda_function.function[k].version]) && length(aws_lambda_alias.live) == 2
    error_message = "every function has an alias live on the version this apply published"
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.function : f.publish && f.tracing_config[0].mode == "Active"])
    error_message = "functions publish versions and trace actively"
  }
  assert {
    condition     = keys(aws_lambda_provisioned_concurrency_config.live) == ["ingress"] && aws_lambda_provisioned_concurrency_config.live["ingress"].qualifier == "live" && aws_lambda_provisioned_concurrency_config.live["ingress"].provisioned_concurrent_executions == 5
    error_message = "provisioned concurrency only where asked, on the alias"
  }
  assert {
    condition     = aws_lambda_function.function["worker"].reserved_concurrent_executions == 10
    error_message = "reserved concurrency is passed through"
  }
  assert {
    condition     = contains(flatten([for s in data.aws_iam_policy_document.function["worker"].statement : s.actions]), "xray:PutTraceSegments")
    error_message = "an actively traced function may send its traces"
  }
}

run "functions_refuse_more_provisioned_than_reserved_concurrency" {
  command = plan
  module {
    source = "./modules/functions"
  }
  variables {
    layer     = { filename = "l.zip", source_code_hash = "bA==" }
    functions = { ingress = { filename = "i.zip", source_code_hash = "aQ==", reserved_concurrency = 2, provisioned_concurrency = 5 } }
  }
  expect_failures = [var.functions]
}

run "api_logs_throttles_traces_and_a_waf" {
  command = apply
  module {
    source = "./modules/api"
  }
  variables {
    routes         = { "GET /health" = { function = "health", api_key_required = false }, "GET /v1/search" = { function = "search", throttle = { rate_limit = 50, burst_limit = 100 } } }
    invoke_arns    = { health = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/h/invocations", search = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/s/invocations" }
    function_names = { health = "mangaassist-test-health", search = "mangaassist-test-search" }
    qualifier      = "live"
    environment    = "prod"
  }

  assert {
    condition     = alltrue([for field in ["requestId", "apiKeyId", "latencyMs", "status"] : contains(keys(jsondecode(aws_api_gateway_stage.this.access_log_settings[0].format)), field)]) && aws_api_gateway_stage.this.access_log_settings[0].destination_arn == aws_cloudwatch_log_group.access.arn
    error_message = "access logs are JSON with the request id, key id, latency and status"
  }
  assert {
    condition     = aws_api_gateway_stage.this.xray_tracing_enabled && aws_api_gateway_stage.this.variables["environment"] == "prod"
    error_message = "X-Ray on the stage, and the environment as a stage variable"
  }
  assert {
    condition     = aws_api_gateway_method_settings.all.method_path == "*/*" && aws_api_gateway_method_settings.all.settings[0].throttling_rate_limit == 1000 && aws_api_gateway_method_settings.all.settings[0].throttling_burst_limit == 2000 && aws_api_gateway_method_settings.all.settings[0].logging_level == "INFO" && aws_api_gateway_method_settings.all.settings[0].metrics_enabled
    error_message = "every method: 1000 rps, 2000 burst, execution logs and metrics"
  }
  assert {
    condition     = aws_api_gateway_method_settings.route["v1/search/GET"].settings[0].throttling_rate_limit == 50
    error_message = "a route's own throttle applies to its method"
  }
  assert {
    condition     = aws_api_gateway_usage_plan.clients.throttle_settings[0].rate_limit == 100 && aws_api_gateway_usage_plan.clients.throttle_settings[0].burst_limit == 200 && aws_api_gateway_usage_plan.clients.quota_settings[0].limit == 10000
    error_message = "per key: 100 rps, 200 burst, 10,000 a day"
  }
  assert {
    condition     = aws_api_gateway_account.this[0].cloudwatch_role_arn == aws_iam_role.cloudwatch[0].arn
    error_message = "the account's CloudWatch role is set (behind a variable)"
  }
  assert {
    condition     = aws_wafv2_web_acl_association.api[0].resource_arn == aws_api_gateway_stage.this.arn && aws_wafv2_web_acl_association.api[0].web_acl_arn == aws_wafv2_web_acl.api[0].arn
    error_message = "the web ACL guards the stage"
  }
  assert {
    condition     = toset([for r in aws_wafv2_web_acl.api[0].rule : r.name]) == toset(["rate-per-ip", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesCommonRuleSet"])
    error_message = "a rate-based rule, the known-bad-inputs rules and the common rule set"
  }
  assert {
    condition     = alltrue([for p in aws_lambda_permission.api : p.qualifier == "live"])
    error_message = "API Gateway may invoke the alias"
  }
}

run "api_without_waf_or_account_role" {
  command = plan
  module {
    source = "./modules/api"
  }
  variables {
    routes                         = { "GET /health" = { function = "health", api_key_required = false } }
    invoke_arns                    = { health = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/h/invocations" }
    function_names                 = { health = "mangaassist-test-health" }
    waf                            = { enabled = false }
    manage_account_cloudwatch_role = false
  }

  assert {
    condition     = length(aws_wafv2_web_acl.api) == 0 && length(aws_wafv2_web_acl_association.api) == 0 && length(aws_api_gateway_account.this) == 0 && length(aws_iam_role.cloudwatch) == 0
    error_message = "WAF and the account-wide role are each behind a variable"
  }
}

run "observability_alarms_into_one_topic_and_a_dashboard" {
  command = apply
  module {
    source = "./modules/observability"
  }
  variables {
    alarm_subscribers = [{ protocol = "email", endpoint = "oncall@example.com" }]
    function_names    = { ingress = "mangaassist-test-webhook_ingress", worker = "mangaassist-test-order_confirmation" }
    rule_names        = { payments = "mangaassist-test-payment-completed" }
    bus_name          = "mangaassist-test-bus"
    table_names       = { orders = "mangaassist-test-orders" }
    queue_names       = { analytics = "mangaassist-test-analytics" }
    dlq_names         = { "payments/confirm" = "mangaassist-test-dlq-payments-confirm" }
    api               = { name = "mangaassist-test-api", stage = "live" }
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.lambda_errors) == 2 && length(aws_cloudwatch_metric_alarm.lambda_throttles) == 2 && aws_cloudwatch_metric_alarm.lambda_throttles["ingress"].dimensions.FunctionName == "mangaassist-test-webhook_ingress"
    error_message = "errors and throttles alarms per function"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.api_5xx.metric_name == "5XXError" && aws_cloudwatch_metric_alarm.api_latency.extended_statistic == "p99" && aws_cloudwatch_metric_alarm.api_latency.dimensions.ApiName == "mangaassist-test-api"
    error_message = "API 5XX and p99 latency alarms"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.rule_failed_invocations["payments"].metric_name == "FailedInvocations" && aws_cloudwatch_metric_alarm.rule_failed_invocations["payments"].dimensions.RuleName == "mangaassist-test-payment-completed"
    error_message = "FailedInvocations per rule"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.table_throttles) == 1 && aws_cloudwatch_metric_alarm.queue_age["analytics"].metric_name == "ApproximateAgeOfOldestMessage"
    error_message = "DynamoDB throttles per table, the oldest message per queue"
  }
  assert {
    condition = alltrue([for a in concat(values(aws_cloudwatch_metric_alarm.lambda_errors), values(aws_cloudwatch_metric_alarm.lambda_throttles), values(aws_cloudwatch_metric_alarm.rule_failed_invocations), values(aws_cloudwatch_metric_alarm.table_throttles), values(aws_cloudwatch_metric_alarm.queue_age), [aws_cloudwatch_metric_alarm.api_5xx, aws_cloudwatch_metric_alarm.api_latency]) :
    a.alarm_actions == toset([aws_sns_topic.alarms.arn])])
    error_message = "every alarm notifies the topic"
  }
  assert {
    condition     = aws_sns_topic_subscription.alarms["email:oncall@example.com"].topic_arn == aws_sns_topic.alarms.arn
    error_message = "subscribers come from the variable"
  }
  assert {
    condition = alltrue([for metric in ["WebhookAccepted", "WebhookRefused", "ModelCalls", "ModelInputTokens", "ModelOutputTokens", "ModelCostUSD", "ModelFallbacks"] :
    strcontains(aws_cloudwatch_dashboard.this.dashboard_body, "MetricName=\\\"${metric}\\\"")])
    error_message = "the dashboard finds every custom metric with a SEARCH expression"
  }
  assert {
    condition     = alltrue([for metric in ["MatchedEvents", "FailedInvocations", "InvocationsSentToDlq", "ApproximateNumberOfMessagesVisible", "Duration", "Errors", "Latency"] : strcontains(aws_cloudwatch_dashboard.this.dashboard_body, "\"${metric}\"")])
    error_message = "the dashboard shows events per rule, failed deliveries, DLQ sends and depth, function p99 and errors, API latency"
  }
}

run "forwarding_to_another_accounts_bus" {
  command = apply
  module {
    source = "./modules/event_bus"
  }
  variables {
    rules = {}
    forwarding = {
      lake = { event_pattern = "{\"source\":[{\"prefix\":\"mangaassist.\"}]}", target_bus_arn = "arn:aws:events:ap-northeast-1:210987654321:event-bus/data-lake" }
    }
  }

  assert {
    condition     = aws_cloudwatch_event_rule.this["forward-lake"].name == "mangaassist-test-forward-lake" && aws_cloudwatch_event_target.this["forward-lake/bus"].arn == "arn:aws:events:ap-northeast-1:210987654321:event-bus/data-lake"
    error_message = "a forwarding rule targets the other account's bus"
  }
  assert {
    condition     = aws_cloudwatch_event_target.this["forward-lake/bus"].role_arn == aws_iam_role.forwarding[0].arn && jsondecode(aws_iam_role_policy.forwarding[0].policy).Statement[0].Resource == ["arn:aws:events:ap-northeast-1:210987654321:event-bus/data-lake"]
    error_message = "EventBridge assumes a role that may put events on the target bus only"
  }
  assert {
    condition     = aws_sqs_queue.dlq["forward-lake/bus"].name == "mangaassist-test-dlq-forward-lake-bus" && length(aws_cloudwatch_metric_alarm.dlq_depth) == 1
    error_message = "a forwarding target has a DLQ and its alarm, like every target"
  }
}

run "no_forwarding_no_role" {
  command = plan
  module {
    source = "./modules/event_bus"
  }
  variables {
    rules = {}
  }

  assert {
    condition     = length(aws_iam_role.forwarding) == 0
    error_message = "without forwarding rules there is no role"
  }
}
