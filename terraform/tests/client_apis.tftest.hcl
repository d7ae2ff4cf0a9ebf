# The client APIs' wiring (issues 17-20): every wired function with its settings and least
# privilege, the REST API's body (committed OpenAPI + API Gateway's extensions), the WebSocket
# API, the queues and their consumers, the outbound notifications path, AppConfig's flags.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  manifest_path = "tests/fixtures/manifest.json"
  name_prefix   = "mangaassist-test"
}

# --- Functions: every one the wiring names, each with every setting settings.py reads --------
run "every_wired_function_gets_every_setting" {
  command = apply

  assert {
    condition     = toset(keys(module.functions.function_names)) == toset(keys(jsondecode(file("wiring.json")).functions))
    error_message = "every function in wiring.json is deployed"
  }
  assert {
    condition = alltrue(flatten([for env in values(module.functions.environment_variables) : [
      for q in keys(jsondecode(file("wiring.json")).queues) : contains(keys(env), "${upper(q)}_QUEUE_URL") && contains(keys(env), "${upper(q)}_DLQ_URL")
    ]]))
    error_message = "every function has <QUEUE>_QUEUE_URL and <QUEUE>_DLQ_URL for every wiring queue"
  }
  assert {
    condition     = module.functions.environment_variables["job_worker"]["JOB_MAX_ATTEMPTS"] == tostring(jsondecode(file("wiring.json")).queues.jobs.max_receive_count)
    error_message = "JOB_MAX_ATTEMPTS is the jobs queue's maxReceiveCount"
  }
  assert {
    condition     = module.functions.environment_variables["chat"]["JOBS_QUEUE_URL"] == module.event_bus.queue_urls["jobs"] && module.functions.environment_variables["notifications"]["NOTIFICATIONS_DLQ_URL"] == module.event_bus.queue_dlq_urls["notifications"]
    error_message = "queue URLs come from the queues themselves"
  }
  assert {
    condition = alltrue(flatten([for env in values(module.functions.environment_variables) : [
      env["APPCONFIG_APPLICATION"] == "mangaassist-test", env["APPCONFIG_ENVIRONMENT"] == "dev", env["APPCONFIG_PROFILE"] == "feature-flags",
      env["FLAGS_MAX_AGE_SECONDS"] == "30", !contains(keys(env), "MODEL_CANDIDATE_ID"),
      env["NOTIFY_SECRET_PREFIX"] == "mangaassist-test/subscriptions/", env["NOTIFY_ALLOW_LOOPBACK"] == "false", env["NOTIFY_TIME_SCALE"] == "1",
      env["WEBSOCKET_CALLBACK_URL"] == "https://mockws.execute-api.ap-northeast-1.amazonaws.com/live",
      env["POWERTOOLS_METRICS_NAMESPACE"] == "MangaAssist",
    ]]))
    error_message = "flags, notifications, the WebSocket callback and the metrics namespace reach every function"
  }
  assert {
    condition     = alltrue([for env in values(module.functions.environment_variables) : env["JWT_REQUIRED"] == "false" && length(setintersection(keys(env), ["JWT_ISSUER", "JWT_AUDIENCE", "JWT_JWKS_URL"])) == 0])
    error_message = "without jwt_authorizer no issuer is set and tokens are optional"
  }
  assert {
    condition     = alltrue(flatten([for env in values(module.functions.environment_variables) : [for k in keys(env) : !startswith(k, "LOCAL_") && !startswith(k, "AWS_")]]))
    error_message = "no LOCAL_* (the local stack's) and no AWS_* (Lambda's own) variable"
  }
  assert {
    condition     = output.function_environment_keys["chat"] == sort(keys(module.functions.environment_variables["chat"])) && length(output.function_environment_keys) == length(jsondecode(file("wiring.json")).functions)
    error_message = "function_environment_keys lists each function's variables, sorted"
  }
  assert {
    condition     = alltrue([for t in keys(jsondecode(file("wiring.json")).tables) : module.functions.environment_variables["health"]["${upper(t)}_TABLE"] == "mangaassist-test-${t}"])
    error_message = "every table's name is <TABLE>_TABLE"
  }
}

run "a_jwt_issuer_and_a_candidate_model_are_passed_when_given" {
  command = plan
  variables {
    jwt_authorizer     = { issuer = "https://cognito-idp.ap-northeast-1.amazonaws.com/pool", audience = "client", jwks_url = "https://cognito-idp.ap-northeast-1.amazonaws.com/pool/.well-known/jwks.json" }
    jwt_required       = true
    model_candidate_id = "anthropic.claude-3-5-haiku-20241022-v1:0"
  }

  assert {
    condition     = module.functions.environment_variables["authorizer"]["JWT_ISSUER"] == "https://cognito-idp.ap-northeast-1.amazonaws.com/pool" && module.functions.environment_variables["authorizer"]["JWT_AUDIENCE"] == "client" && endswith(module.functions.environment_variables["authorizer"]["JWT_JWKS_URL"], "/jwks.json") && module.functions.environment_variables["authorizer"]["JWT_REQUIRED"] == "true"
    error_message = "the issuer, audience, JWKS URL and JWT_REQUIRED come from the variables"
  }
  assert {
    condition     = module.functions.environment_variables["chat"]["MODEL_CANDIDATE_ID"] == "anthropic.claude-3-5-haiku-20241022-v1:0" && contains(one([for s in local.functions["chat"].policy_statements : s.resources if s.sid == "InvokeModels"]), "arn:aws:bedrock:ap-northeast-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0")
    error_message = "the candidate model is set, and the model callers may invoke it"
  }
}

run "bad_input_jwt_required_without_an_issuer" {
  command = plan
  variables {
    jwt_required = true
  }
  expect_failures = [var.jwt_required]
}

run "bad_input_a_build_without_a_wired_function" {
  command = plan
  variables {
    manifest_path = "tests/fixtures/manifest_without_websocket.json"
  }
  expect_failures = [output.build_version]
}

# --- Permissions: each wiring name -> least-privilege statements ------------------------------
run "permissions_are_least_privilege_statements" {
  command = apply

  assert {
    condition     = toset(one([for s in local.functions["recommend"].policy_statements : s.resources if s.sid == "ReadOrders"])) == toset([module.data.table_arns["orders"], "${module.data.table_arns["orders"]}/index/*"])
    error_message = "a table's :read covers its global secondary indexes"
  }
  assert {
    condition     = toset(one([for s in local.functions["recommend"].policy_statements : s.actions if s.sid == "ReadOrders"])) == toset(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"])
    error_message = ":read only reads"
  }
  assert {
    condition     = length([for s in local.functions["chat"].policy_statements : s if s.sid == "ReadWriteSessions"]) == 1 && alltrue([for a in ["dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:UpdateItem", "dynamodb:PutItem"] : contains(one([for s in local.functions["chat"].policy_statements : s.actions if s.sid == "ReadWriteSessions"]), a)])
    error_message = ":readwrite adds the item writes, DeleteItem and ConditionCheckItem"
  }
  assert {
    condition     = one([for s in local.functions["generate"].policy_statements : s if s.sid == "SendToJobs"]).resources == [module.event_bus.queue_arns["jobs"]] && one([for s in local.functions["generate"].policy_statements : s if s.sid == "SendToJobs"]).actions == ["sqs:SendMessage"]
    error_message = "queue:jobs:send is sqs:SendMessage on the jobs queue"
  }
  assert {
    condition     = one([for s in local.functions["notifications"].policy_statements : s if s.sid == "SendToNotificationsDeadLetters"]).resources == [module.event_bus.queue_dlq_arns["notifications"]]
    error_message = "dlq:notifications:send is sqs:SendMessage on the queue's own DLQ"
  }
  assert {
    condition     = one([for s in local.functions["chat"].policy_statements : s if s.sid == "ReadFeatureFlags"]).resources == ["arn:aws:appconfig:ap-northeast-1:123456789012:application/mockapp/environment/*/configuration/mockprf"] && toset(one([for s in local.functions["chat"].policy_statements : s if s.sid == "ReadFeatureFlags"]).actions) == toset(["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"])
    error_message = "flags:read is the AppConfig data API on this application's flags profile"
  }
  assert {
    condition     = one([for s in local.functions["notifications"].policy_statements : s if s.sid == "ReadSubscriptionSecrets"]).resources == ["arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:mangaassist-test/subscriptions/*"]
    error_message = "notification_secrets:read is GetSecretValue on <prefix>/subscriptions/*"
  }
  assert {
    condition     = contains(one([for s in local.functions["stream_worker"].policy_statements : s if s.sid == "ManageWebSocketConnections"]).resources, "arn:aws:execute-api:ap-northeast-1:123456789012:mockws/live/POST/@connections/*") && one([for s in local.functions["stream_worker"].policy_statements : s if s.sid == "ManageWebSocketConnections"]).actions == ["execute-api:ManageConnections"]
    error_message = "websocket:manage is ManageConnections on the stage's @connections"
  }
  assert {
    condition     = length([for s in local.functions["health"].policy_statements : s]) == 0 && length([for s in local.functions["authorizer"].policy_statements : s]) == 0
    error_message = "a function with no permissions in the wiring gets no statements"
  }
}

# --- Tables: global secondary indexes and TTL from the wiring --------------------------------
run "tables_with_indexes_and_ttl" {
  command = apply
  module {
    source = "./modules/data"
  }
  variables {
    tables = {
      orders   = { hash_key = "order_id", global_secondary_indexes = { by_customer = { hash_key = "customer_id", range_key = "paid_at" } } }
      sessions = { hash_key = "session_id", ttl_attribute = "expires_at" }
    }
    buckets = {}
  }

  assert {
    condition     = one(aws_dynamodb_table.this["orders"].global_secondary_index).name == "by_customer" && one(aws_dynamodb_table.this["orders"].global_secondary_index).range_key == "paid_at" && one(aws_dynamodb_table.this["orders"].global_secondary_index).projection_type == "ALL"
    error_message = "an index per wiring entry, projecting every attribute"
  }
  assert {
    condition     = toset([for a in aws_dynamodb_table.this["orders"].attribute : a.name]) == toset(["order_id", "customer_id", "paid_at"])
    error_message = "the index keys are declared attributes"
  }
  assert {
    condition     = aws_dynamodb_table.this["orders"].billing_mode == "PAY_PER_REQUEST" && output.index_arns["orders"] == "${aws_dynamodb_table.this["orders"].arn}/index/*" && output.index_arns["sessions"] == null
    error_message = "on-demand; the indexes' ARN pattern is output for the table's permissions"
  }
  assert {
    condition     = one(aws_dynamodb_table.this["sessions"].ttl).attribute_name == "expires_at" && one(aws_dynamodb_table.this["sessions"].ttl).enabled
    error_message = "TTL as the wiring says"
  }
}

# --- Queues: each with its DLQ and a consumer shaped by the wiring ---------------------------
run "every_queue_has_its_dlq_and_a_consumer_as_wired" {
  command = apply

  assert {
    condition     = toset(keys(module.event_bus.queue_names)) == toset(keys(jsondecode(file("wiring.json")).queues)) && toset(keys(module.event_bus.queue_dlq_names)) == toset(keys(module.event_bus.queue_names))
    error_message = "every wiring queue exists with its own DLQ"
  }
  assert {
    condition = alltrue([for q, spec in jsondecode(file("wiring.json")).queues :
      aws_lambda_event_source_mapping.queue[q].batch_size == spec.batch_size &&
      aws_lambda_event_source_mapping.queue[q].maximum_batching_window_in_seconds == spec.maximum_batching_window_seconds &&
      aws_lambda_event_source_mapping.queue[q].scaling_config[0].maximum_concurrency == spec.maximum_concurrency &&
      aws_lambda_event_source_mapping.queue[q].function_name == module.functions.alias_arns[spec.function] &&
    contains(aws_lambda_event_source_mapping.queue[q].function_response_types, "ReportBatchItemFailures")])
    error_message = "each queue is drained by its function's alias with the wiring's batch size, window and concurrency, reporting partial failures"
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue["jobs"].batch_size == 1 && aws_lambda_event_source_mapping.queue["jobs"].maximum_batching_window_in_seconds == 0 && aws_lambda_event_source_mapping.queue["streams"].batch_size == 1
    error_message = "jobs and streams take one message at a time, at once"
  }
}

# --- Outbound notifications (issue 20): table, queue, DLQ, dispatcher and its rule -----------
run "outbound_notifications_table_queue_dlq_dispatcher_and_rule" {
  command = apply

  assert {
    condition     = module.data.table_names["subscriptions"] == "mangaassist-test-subscriptions"
    error_message = "the subscriptions table exists"
  }
  assert {
    condition     = module.event_bus.queue_names["notifications"] == "mangaassist-test-notifications" && module.event_bus.queue_dlq_names["notifications"] == "mangaassist-test-notifications-dlq"
    error_message = "the notifications queue and its DLQ exist"
  }
  assert {
    condition     = module.event_bus.rule_names["notify"] == "mangaassist-test-notify" && module.event_bus.target_arns["notify/notifications"] == module.event_bus.queue_arns["notifications"]
    error_message = "the notify rule sends events to the notifications queue"
  }
  assert {
    condition     = aws_lambda_event_source_mapping.queue["notifications"].function_name == module.functions.alias_arns["notifications"] && module.functions.function_names["notifications"] == "mangaassist-test-notifications"
    error_message = "the dispatcher drains the queue"
  }
  assert {
    condition     = module.event_bus.dlq_alarm_names["queue:notifications"] == "mangaassist-test-notifications-dlq-not-empty"
    error_message = "an alarm watches the notifications DLQ's depth"
  }
  assert {
    condition     = toset([for s in local.functions["notifications"].policy_statements : s.sid]) == toset(["ReadWriteSubscriptions", "ReadSubscriptionSecrets", "PutEvents", "ConsumeNotifications", "SendToNotifications", "SendToNotificationsDeadLetters"])
    error_message = "the dispatcher may read and write subscriptions, read their secrets, publish, consume and re-queue its queue, and dead-letter: nothing else"
  }
}
