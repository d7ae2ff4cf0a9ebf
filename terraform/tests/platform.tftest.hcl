# Plans the root module against a mocked AWS provider: offline, no credentials.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  manifest_path = "tests/fixtures/manifest.json"
  name_prefix   = "mangaassist-test"
}

run "functions_come_from_the_wiring_and_the_manifest" {
  command = plan

  assert {
    condition     = module.functions.function_names["health"] == "mangaassist-test-health"
    error_message = "the health function is named from the prefix and its folder"
  }
  assert {
    condition     = module.functions.function_names == { for k, _ in jsondecode(file("wiring.json")).functions : k => "mangaassist-test-${k}" }
    error_message = "every function in wiring.json is deployed, and nothing else"
  }
}

run "zips_and_hashes_come_from_the_manifest" {
  command = apply

  assert {
    condition     = module.functions.layer_arn == "arn:aws:lambda:ap-northeast-1:123456789012:layer:mock:1"
    error_message = "the functions use the shared layer"
  }
}

# The functions module on its own: what every function gets.
run "functions_module_least_privilege_and_hashes" {
  command = apply
  module {
    source = "./modules/functions"
  }
  variables {
    layer = { filename = "build/layers/shared.zip", source_code_hash = "bGF5ZXI=" }
    functions = {
      ingress = {
        filename             = "build/functions/ingress.zip"
        source_code_hash     = "aW5ncmVzcw=="
        reserved_concurrency = 5
        environment          = { EVENT_BUS_NAME = "bus" }
        policy_statements    = [{ sid = "Publish", actions = ["events:PutEvents"], resources = ["arn:aws:events:ap-northeast-1:123456789012:event-bus/bus"] }]
      }
    }
  }

  assert {
    condition     = aws_lambda_function.function["ingress"].source_code_hash == "aW5ncmVzcw==" && aws_lambda_function.function["ingress"].filename == "build/functions/ingress.zip"
    error_message = "zip and hash come from the manifest entry"
  }
  assert {
    condition     = aws_lambda_function.function["ingress"].reserved_concurrent_executions == 5
    error_message = "reserved concurrency is passed through"
  }
  assert {
    condition     = aws_lambda_function.function["ingress"].environment[0].variables["EVENT_BUS_NAME"] == "bus" && aws_lambda_function.function["ingress"].environment[0].variables["POWERTOOLS_SERVICE_NAME"] == "mangaassist"
    error_message = "environment merges the function's variables over the defaults"
  }
  assert {
    condition     = aws_lambda_function.function["ingress"].role == aws_iam_role.function["ingress"].arn
    error_message = "each function runs as its own role"
  }
  assert {
    condition     = length(data.aws_iam_policy_document.function["ingress"].statement) == 3 && data.aws_iam_policy_document.function["ingress"].statement[2].actions == toset(["events:PutEvents"])
    error_message = "a role gets its own logs, X-Ray's traces, plus exactly the statements it was given"
  }
  assert {
    condition     = one(data.aws_iam_policy_document.function["ingress"].statement[0].resources) == "arn:aws:logs:ap-northeast-1:123456789012:log-group:/aws/lambda/mangaassist-test-ingress:*"
    error_message = "a function may write only to its own log group"
  }
  assert {
    condition     = aws_lambda_function.function["ingress"].layers == tolist([aws_lambda_layer_version.shared.arn])
    error_message = "every function uses the shared layer"
  }
}

run "functions_module_rejects_bad_sizing" {
  command = plan
  module {
    source = "./modules/functions"
  }
  variables {
    layer     = { filename = "l.zip", source_code_hash = "bA==" }
    functions = { bad = { filename = "b.zip", source_code_hash = "Yg==", timeout = 901 } }
  }
  expect_failures = [var.functions]
}

# The event bus module with one Lambda target and one queue target.
run "event_bus_every_target_has_retry_policy_and_its_own_dlq" {
  command = apply
  module {
    source = "./modules/event_bus"
  }
  variables {
    archive = { event_pattern = "{\"source\":[{\"prefix\":\"mangaassist.\"}]}", retention_days = 30 }
    queues  = { analytics = {} }
    rules = {
      payments = {
        event_pattern = "{\"source\":[\"mangaassist.payments\"]}"
        targets = {
          confirm = { type = "lambda", arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:f:live", function_name = "f", qualifier = "live", role_name = "f-role", retry_policy = { maximum_retry_attempts = 4, maximum_event_age_in_seconds = 3600 } }
        }
      }
      everything = {
        event_pattern = "{\"source\":[{\"prefix\":\"mangaassist.\"}]}"
        targets       = { sink = { type = "sqs", queue = "analytics" } }
      }
    }
    schemas = { "mangaassist.payments@PaymentCompleted" = "{\"$schema\":\"http://json-schema.org/draft-04/schema#\",\"type\":\"object\"}" }
  }

  assert {
    condition     = length(aws_cloudwatch_event_target.this) == 2 && alltrue([for t in aws_cloudwatch_event_target.this : length(t.dead_letter_config) == 1 && length(t.retry_policy) == 1])
    error_message = "every target has a DLQ and a retry policy"
  }
  assert {
    condition     = aws_cloudwatch_event_target.this["payments/confirm"].retry_policy[0].maximum_retry_attempts == 4 && aws_cloudwatch_event_target.this["everything/sink"].retry_policy[0].maximum_retry_attempts == 185
    error_message = "a target's retry policy is its own, or EventBridge's defaults"
  }
  assert {
    condition     = length(aws_sqs_queue.dlq) == 2 && alltrue([for q in aws_sqs_queue.dlq : q.message_retention_seconds == 1209600 && q.sqs_managed_sse_enabled])
    error_message = "one encrypted DLQ per target, keeping messages 14 days"
  }
  assert {
    condition     = alltrue([for q in aws_sqs_queue.dlq : length(q.name) <= 80])
    error_message = "queue names fit SQS's 80 characters"
  }
  assert {
    condition     = one(one(one(data.aws_iam_policy_document.queue["dlq:payments/confirm"].statement).condition).values) == aws_cloudwatch_event_rule.this["payments"].arn && length(aws_sqs_queue_policy.queue) == 3
    error_message = "only the target's own rule may send to its DLQ"
  }
  assert {
    condition     = aws_cloudwatch_event_archive.this.event_source_arn == aws_cloudwatch_event_bus.this.arn && aws_cloudwatch_event_archive.this.retention_days == 30
    error_message = "the archive records the bus with the given retention"
  }
  assert {
    condition     = alltrue([for r in aws_cloudwatch_event_rule.this : can(jsondecode(r.event_pattern)) && r.event_bus_name == aws_cloudwatch_event_bus.this.name])
    error_message = "every rule sits on the custom bus with a JSON pattern"
  }
  assert {
    condition     = aws_schemas_schema.this["mangaassist.payments@PaymentCompleted"].type == "JSONSchemaDraft4"
    error_message = "schemas register as JSON Schema draft 4"
  }
  assert {
    condition     = length(aws_lambda_permission.events) == 1 && aws_lambda_permission.events["payments/confirm"].source_arn == aws_cloudwatch_event_rule.this["payments"].arn && aws_lambda_permission.events["payments/confirm"].qualifier == "live"
    error_message = "only the rule may invoke its Lambda target, on the alias the target names"
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.target["f"].destination_config[0].on_failure[0].destination == aws_sqs_queue.dlq["payments/confirm"].arn && aws_lambda_function_event_invoke_config.target["f"].maximum_retry_attempts == 2 && aws_lambda_function_event_invoke_config.target["f"].qualifier == "live"
    error_message = "a Lambda target's own failures go to its DLQ after Lambda's retries"
  }
  assert {
    condition     = aws_iam_role_policy.failure_destination["f"].role == "f-role" && jsondecode(aws_iam_role_policy.failure_destination["f"].policy).Statement[0].Resource == aws_sqs_queue.dlq["payments/confirm"].arn && jsondecode(aws_iam_role_policy.failure_destination["f"].policy).Statement[0].Action == "sqs:SendMessage"
    error_message = "the target function's role may send to its DLQ, and only there"
  }
  assert {
    condition     = aws_sqs_queue.dlq["payments/confirm"].name == "mangaassist-test-dlq-payments-confirm" && aws_sqs_queue.dlq["everything/sink"].name == "mangaassist-test-dlq-everything-sink"
    error_message = "a target's DLQ is <prefix>-dlq-<rule>-<target>: never cut or hashed"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.dlq_depth) == 3
    error_message = "an alarm watches every DLQ (both targets' and the queue's redrive DLQ)"
  }
}

run "event_bus_rejects_a_bad_retry_policy" {
  command = plan
  module {
    source = "./modules/event_bus"
  }
  variables {
    rules = {
      bad = {
        event_pattern = "{\"source\":[\"x\"]}"
        targets       = { t = { type = "lambda", arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:f", function_name = "f", role_name = "f", retry_policy = { maximum_retry_attempts = 186 } } }
      }
    }
  }
  expect_failures = [var.rules]
}

# The root module: what wiring.json asks for is what gets planned.
run "root_every_wired_rule_target_has_a_dlq" {
  command = apply

  assert {
    condition     = length(module.event_bus.dlq_arns) == sum(concat([0], [for r in values(jsondecode(file("wiring.json")).rules) : length(r.targets)]))
    error_message = "one DLQ per rule target in wiring.json"
  }
  assert {
    condition     = module.event_bus.archive_name == "mangaassist-test-archive"
    error_message = "the archive exists"
  }
  assert {
    condition     = toset(keys(module.data.table_names)) == toset(keys(jsondecode(file("wiring.json")).tables))
    error_message = "every table in wiring.json exists"
  }
}

run "root_webhooks_every_source_has_a_url_and_a_secret" {
  command = apply

  assert {
    condition     = toset(keys(output.webhook_urls)) == toset(keys(jsondecode(file("wiring.json")).sources))
    error_message = "every source in wiring.json has a URL"
  }
  assert {
    condition     = output.webhook_urls["stripe"] == "https://mock.lambda-url.ap-northeast-1.on.aws/webhooks/stripe"
    error_message = "a source's URL is the function URL plus /webhooks/<source>"
  }
  assert {
    condition     = module.webhooks.secret_prefix == "mangaassist-test/webhooks/"
    error_message = "secrets are named <prefix>/webhooks/<source>"
  }
}

run "webhooks_module_public_url_with_both_permissions" {
  command = apply
  module {
    source = "./modules/webhooks"
  }
  variables {
    sources        = { stripe = { scheme = "stripe" }, reviews = { scheme = "standard-webhooks" } }
    function_name  = "mangaassist-test-webhook_ingress"
    log_group_name = "/aws/lambda/mangaassist-test-webhook_ingress"
  }

  assert {
    condition     = aws_lambda_function_url.ingress.authorization_type == "NONE"
    error_message = "the signature is the authentication"
  }
  assert {
    condition     = aws_lambda_permission.url.action == "lambda:InvokeFunctionUrl" && aws_lambda_permission.url.function_url_auth_type == "NONE" && aws_lambda_permission.url_invoke.action == "lambda:InvokeFunction"
    error_message = "AWS requires both InvokeFunctionUrl and InvokeFunction for a public URL"
  }
  assert {
    condition     = length(aws_secretsmanager_secret.source) == 2 && aws_secretsmanager_secret.source["stripe"].name == "mangaassist-test/webhooks/stripe"
    error_message = "one secret per source"
  }
  assert {
    condition     = aws_cloudwatch_log_metric_filter.claim_not_completed.log_group_name == "/aws/lambda/mangaassist-test-webhook_ingress" && aws_cloudwatch_metric_alarm.claim_not_completed.metric_name == aws_cloudwatch_log_metric_filter.claim_not_completed.metric_transformation[0].name
    error_message = "accepted deliveries whose claim was not completed are counted from the ingress logs and alarmed on"
  }
}

run "webhooks_module_rejects_an_unknown_scheme" {
  command = plan
  module {
    source = "./modules/webhooks"
  }
  variables {
    sources        = { x = { scheme = "md5" } }
    function_name  = "f"
    log_group_name = "/aws/lambda/f"
  }
  expect_failures = [var.sources]
}

run "root_every_rule_from_the_wiring_with_dlqs_and_queue_consumers" {
  command = apply

  assert {
    condition     = toset(keys(module.event_bus.rule_arns)) == toset(keys(jsondecode(file("wiring.json")).rules))
    error_message = "every rule in wiring.json exists on the bus"
  }
  assert {
    condition     = length(aws_lambda_event_source_mapping.queue) == length(jsondecode(file("wiring.json")).queues) && alltrue([for m in aws_lambda_event_source_mapping.queue : contains(m.function_response_types, "ReportBatchItemFailures")])
    error_message = "every queue target is drained by its function with partial batch failures"
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue["analytics"].maximum_batching_window_in_seconds == jsondecode(file("wiring.json")).queues.analytics.maximum_batching_window_seconds && aws_lambda_event_source_mapping.queue["analytics"].scaling_config[0].maximum_concurrency == jsondecode(file("wiring.json")).queues.analytics.maximum_concurrency
    error_message = "the queue's batching window and maximum concurrency come from wiring.json"
  }
  assert {
    condition     = length(module.event_bus.dlq_arns) == sum([for r in values(jsondecode(file("wiring.json")).rules) : length(r.targets)])
    error_message = "every rule target has its DLQ"
  }
  assert {
    condition     = toset(keys(module.event_bus.failure_destinations)) == toset(flatten([for r in values(jsondecode(file("wiring.json")).rules) : [for t in values(r.targets) : "mangaassist-test-${t.function}" if can(t.function)]]))
    error_message = "every Lambda target function sends its failed invocations to a DLQ (its role is allowed to), and no other"
  }
}

run "search_module_grants_only_the_indexer_and_search_roles" {
  command = apply
  module {
    source = "./modules/search"
  }
  variables {
    writer_role_arns = ["arn:aws:iam::123456789012:role/indexer"]
    reader_role_arns = ["arn:aws:iam::123456789012:role/search"]
  }

  assert {
    condition     = aws_opensearchserverless_collection.products.type == "VECTORSEARCH"
    error_message = "a vector search collection"
  }
  assert {
    condition     = jsondecode(aws_opensearchserverless_security_policy.encryption.policy).AWSOwnedKey == true
    error_message = "the collection is encrypted"
  }
  assert {
    condition     = !contains(keys(jsondecode(aws_opensearchserverless_security_policy.encryption.policy)), "KmsARN")
    error_message = "with an AWS-owned key the encryption policy names no key (no \"KmsARN\": null)"
  }
  assert {
    condition     = toset(flatten([for s in jsondecode(aws_opensearchserverless_access_policy.data[0].policy) : s.Principal])) == toset(["arn:aws:iam::123456789012:role/indexer", "arn:aws:iam::123456789012:role/search"])
    error_message = "the data access policy names only the indexer and the search roles"
  }
  assert {
    condition     = !contains(flatten([for r in jsondecode(aws_opensearchserverless_access_policy.data[0].policy)[1].Rules : r.Permission]), "aoss:WriteDocument")
    error_message = "the search role cannot write"
  }
}

run "api_module_routes_keys_and_redeployments" {
  command = apply
  module {
    source = "./modules/api"
  }
  variables {
    routes         = { "GET /health" = { function = "health", api_key_required = false }, "GET /v1/search" = { function = "search" } }
    invoke_arns    = { health = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/h/invocations", search = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/s/invocations" }
    function_names = { health = "mangaassist-test-health", search = "mangaassist-test-search" }
  }

  assert {
    condition     = jsondecode(aws_api_gateway_rest_api.this.body).paths["/v1/search"].get.security == [{ api_key = [] }] && length(jsondecode(aws_api_gateway_rest_api.this.body).paths["/health"].get.security) == 0
    error_message = "search needs the API key, health does not"
  }
  assert {
    condition     = jsondecode(aws_api_gateway_rest_api.this.body).paths["/v1/search"].get["x-amazon-apigateway-integration"].type == "aws_proxy"
    error_message = "routes are Lambda proxy integrations"
  }
  assert {
    condition     = aws_api_gateway_deployment.this.triggers.redeployment == sha1(aws_api_gateway_rest_api.this.body)
    error_message = "a changed body redeploys"
  }
  assert {
    condition     = length(aws_lambda_permission.api) == 2 && alltrue([for p in aws_lambda_permission.api : p.principal == "apigateway.amazonaws.com"])
    error_message = "API Gateway may invoke each routed function"
  }
}
