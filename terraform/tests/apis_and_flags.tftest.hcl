# The REST API's body (the committed OpenAPI document plus API Gateway's extensions), the
# WebSocket API, and the feature flags in AppConfig with their alarm-monitored rollout (issue 18).
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  manifest_path = "tests/fixtures/manifest.json"
  name_prefix   = "mangaassist-test"
}

# --- REST: the module adds integrations, validators and the authorizer to a document ----------
run "rest_body_is_the_document_with_api_gateways_extensions" {
  command = apply
  module {
    source = "./modules/api"
  }
  variables {
    routes = {
      "GET /health"   = { function = "health", api_key_required = false }
      "POST /v1/chat" = { function = "chat", authorizer = "jwt" }
    }
    document = jsonencode({
      openapi = "3.0.3"
      info    = { title = "t", version = "1" }
      paths = {
        "/health"  = { get = { security = [], responses = { "200" = { description = "ok" } } } }
        "/v1/chat" = { post = { security = [{ api_key = [] }], requestBody = { required = true, content = { "application/json" = { schema = { "$ref" = "#/components/schemas/ChatRequest" } } } }, responses = { "200" = { description = "ok" } } } }
      }
      components = {
        schemas         = { ChatRequest = { type = "object", required = ["message"], properties = { message = { type = "string" } } } }
        securitySchemes = { api_key = { type = "apiKey", name = "x-api-key", in = "header" }, bearer = { type = "http", scheme = "bearer" } }
      }
    })
    authorizers    = { jwt = { invoke_arn = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/auth/invocations", function_name = "mangaassist-test-authorizer" } }
    invoke_arns    = { health = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/h/invocations", chat = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/c/invocations" }
    function_names = { health = "mangaassist-test-health", chat = "mangaassist-test-chat" }
    qualifier      = "live"
  }

  assert {
    condition     = jsondecode(aws_api_gateway_rest_api.this.body).paths["/v1/chat"].post["x-amazon-apigateway-integration"] == { type = "aws_proxy", httpMethod = "POST", uri = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/c/invocations", passthroughBehavior = "when_no_match" }
    error_message = "each operation is a Lambda proxy integration on its route's function"
  }
  assert {
    condition     = jsondecode(aws_api_gateway_rest_api.this.body).paths["/v1/chat"].post["x-amazon-apigateway-request-validator"] == "body-and-parameters" && jsondecode(aws_api_gateway_rest_api.this.body)["x-amazon-apigateway-request-validators"]["body-and-parameters"] == { validateRequestBody = true, validateRequestParameters = true }
    error_message = "an operation with a body is validated (body and parameters) before the Lambda runs"
  }
  assert {
    condition     = !can(jsondecode(aws_api_gateway_rest_api.this.body).paths["/health"].get["x-amazon-apigateway-request-validator"])
    error_message = "an operation without a body or parameters has nothing to validate"
  }
  assert {
    condition     = jsondecode(aws_api_gateway_rest_api.this.body).paths["/v1/chat"].post.security == [{ api_key = [], jwt = [] }] && jsondecode(aws_api_gateway_rest_api.this.body).paths["/health"].get.security == []
    error_message = "a route naming the authorizer needs it and its API key; others are as the document says"
  }
  assert {
    condition     = jsondecode(aws_api_gateway_rest_api.this.body).components.securitySchemes.jwt["x-amazon-apigateway-authorizer"] == { type = "request", authorizerUri = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/auth/invocations", authorizerResultTtlInSeconds = 0 } && jsondecode(aws_api_gateway_rest_api.this.body).components.securitySchemes.jwt["x-amazon-apigateway-authtype"] == "custom"
    error_message = "the REQUEST authorizer: no identity sources (anonymous requests reach it), result not cached"
  }
  assert {
    condition     = jsondecode(aws_api_gateway_rest_api.this.body).components.schemas.ChatRequest.required == ["message"] && !can(jsondecode(aws_api_gateway_rest_api.this.body).components.securitySchemes.bearer)
    error_message = "the document's schemas are the models; API Gateway gets the schemes it enforces"
  }
  assert {
    condition     = aws_api_gateway_deployment.this.triggers.redeployment == sha1(aws_api_gateway_rest_api.this.body)
    error_message = "a changed body redeploys"
  }
  assert {
    condition     = aws_lambda_permission.authorizer["jwt"].function_name == "mangaassist-test-authorizer" && aws_lambda_permission.authorizer["jwt"].qualifier == "live" && aws_lambda_permission.authorizer["jwt"].source_arn == "arn:aws:execute-api:ap-northeast-1:123456789012:mockapi/authorizers/*"
    error_message = "API Gateway may invoke the authorizer's alias"
  }
}

run "rest_refuses_a_document_that_differs_from_the_routes" {
  command = plan
  module {
    source = "./modules/api"
  }
  variables {
    routes         = { "GET /health" = { function = "health", api_key_required = false }, "GET /v1/search" = { function = "search" } }
    document       = jsonencode({ openapi = "3.0.3", info = { title = "t", version = "1" }, paths = { "/health" = { get = { security = [], responses = { "200" = { description = "ok" } } } } } })
    invoke_arns    = { health = "h", search = "s" }
    function_names = { health = "h", search = "s" }
  }
  expect_failures = [aws_api_gateway_rest_api.this]
}

run "root_rest_body_is_the_committed_document_for_every_route" {
  command = apply

  assert {
    condition     = toset(flatten([for p, ops in jsondecode(module.api.openapi).paths : [for m in keys(ops) : "${upper(m)} ${p}"]])) == toset(keys(jsondecode(file("wiring.json")).routes))
    error_message = "every route is an operation"
  }
  assert {
    condition     = jsondecode(module.api.openapi).components.schemas == jsondecode(file("../schemas/api/openapi.json")).components.schemas
    error_message = "the models are the committed document's schemas"
  }
  assert {
    condition = alltrue([for key, r in jsondecode(file("wiring.json")).routes :
      contains(flatten([for req in jsondecode(module.api.openapi).paths[split(" ", key)[1]][lower(split(" ", key)[0])].security : keys(req)]), r.authorizer) if can(r.authorizer)
    ])
    error_message = "every route that names the authorizer gets it"
  }
  assert {
    condition     = can(jsondecode(module.api.openapi).paths["/v1/generate"].post["x-amazon-apigateway-request-validator"]) && can(jsondecode(module.api.openapi).paths["/v1/search"].get["x-amazon-apigateway-request-validator"])
    error_message = "operations with a body or parameters are validated"
  }
}

# --- WebSocket -------------------------------------------------------------------------------
run "websocket_routes_authorizer_stage_and_usage_plan" {
  command = apply
  module {
    source = "./modules/websocket"
  }
  variables {
    routes                   = ["$connect", "$disconnect", "$default", "sendMessage"]
    invoke_arn               = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/ws/invocations"
    function_name            = "mangaassist-test-websocket"
    authorizer_invoke_arn    = "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/auth/invocations"
    authorizer_function_name = "mangaassist-test-authorizer"
    qualifier                = "live"
    api_key_ids              = { clients = "key123" }
    throttle                 = { rate_limit = 100, burst_limit = 200 }
  }

  assert {
    condition     = aws_apigatewayv2_api.this.protocol_type == "WEBSOCKET" && aws_apigatewayv2_api.this.route_selection_expression == "$request.body.action" && aws_apigatewayv2_api.this.api_key_selection_expression == "$context.authorizer.usageIdentifierKey"
    error_message = "a WebSocket API routing on the body's action, its API key the one the authorizer returns"
  }
  assert {
    condition     = toset(keys(aws_apigatewayv2_route.this)) == toset(["$connect", "$disconnect", "$default", "sendMessage"]) && alltrue([for r in aws_apigatewayv2_route.this : r.target == "integrations/${aws_apigatewayv2_integration.function.id}"])
    error_message = "every route is the function's integration"
  }
  assert {
    condition     = aws_apigatewayv2_integration.function.integration_type == "AWS_PROXY" && aws_apigatewayv2_integration.function.integration_uri == "arn:aws:apigateway:ap-northeast-1:lambda:path/functions/ws/invocations"
    error_message = "a Lambda proxy integration on the function's alias"
  }
  assert {
    condition     = aws_apigatewayv2_route.this["$connect"].authorization_type == "CUSTOM" && aws_apigatewayv2_route.this["$connect"].authorizer_id == aws_apigatewayv2_authorizer.this.id && aws_apigatewayv2_route.this["$connect"].api_key_required && !aws_apigatewayv2_route.this["sendMessage"].api_key_required
    error_message = "$connect is authorized and needs the API key"
  }
  assert {
    condition     = aws_apigatewayv2_authorizer.this.authorizer_type == "REQUEST" && length(coalesce(aws_apigatewayv2_authorizer.this.identity_sources, [])) == 0
    error_message = "a REQUEST authorizer without identity sources: anonymous handshakes reach it"
  }
  assert {
    condition     = aws_apigatewayv2_stage.this.default_route_settings[0].throttling_rate_limit == 100 && aws_apigatewayv2_stage.this.default_route_settings[0].throttling_burst_limit == 200 && aws_apigatewayv2_stage.this.deployment_id == aws_apigatewayv2_deployment.this[0].id
    error_message = "the stage throttles every route and serves the deployment"
  }
  assert {
    condition     = alltrue([for f in ["requestId", "connectionId", "routeKey", "status", "apiKeyId"] : contains(keys(jsondecode(aws_apigatewayv2_stage.this.access_log_settings[0].format)), f)]) && aws_apigatewayv2_stage.this.access_log_settings[0].destination_arn == aws_cloudwatch_log_group.access.arn
    error_message = "JSON access logs"
  }
  assert {
    condition     = one(aws_api_gateway_usage_plan.this.api_stages).api_id == aws_apigatewayv2_api.this.id && one(aws_api_gateway_usage_plan.this.api_stages).stage == "live" && aws_api_gateway_usage_plan_key.this["clients"].key_id == "key123"
    error_message = "the clients' key is in a usage plan covering the stage"
  }
  assert {
    condition     = aws_lambda_permission.routes.source_arn == "arn:aws:execute-api:ap-northeast-1:123456789012:mockws/live/*" && aws_lambda_permission.authorizer.source_arn == "arn:aws:execute-api:ap-northeast-1:123456789012:mockws/authorizers/mockauth" && aws_lambda_permission.routes.qualifier == "live"
    error_message = "API Gateway may invoke the function and the authorizer, from this API only"
  }
  assert {
    condition     = output.url == "wss://mockws.execute-api.ap-northeast-1.amazonaws.com/live" && output.callback_url == "https://mockws.execute-api.ap-northeast-1.amazonaws.com/live"
    error_message = "the wss URL and the @connections callback URL"
  }
}

run "websocket_without_a_deployment_for_emulators" {
  command = plan
  module {
    source = "./modules/websocket"
  }
  variables {
    routes                   = ["$connect"]
    invoke_arn               = "i"
    function_name            = "f"
    authorizer_invoke_arn    = "a"
    authorizer_function_name = "a"
    throttle                 = { rate_limit = 1, burst_limit = 1 }
    create_deployment        = false
  }

  assert {
    condition     = length(aws_apigatewayv2_deployment.this) == 0
    error_message = "the deployment is behind a variable"
  }
}

run "root_websocket_from_the_wiring" {
  command = apply

  assert {
    condition     = output.websocket_url == "wss://mockws.execute-api.ap-northeast-1.amazonaws.com/live" && output.websocket_callback_url == module.functions.environment_variables["stream_worker"]["WEBSOCKET_CALLBACK_URL"]
    error_message = "the WebSocket URL is an output and its callback URL every function's setting"
  }
  assert {
    condition     = toset(keys(module.websocket.route_ids)) == toset(jsondecode(file("wiring.json")).websocket.routes)
    error_message = "every wiring route exists"
  }
}

# --- Feature flags (issue 18) ----------------------------------------------------------------
run "flags_hosted_and_rolled_out_under_alarms" {
  command = apply
  module {
    source = "./modules/flags"
  }
  variables {
    environment   = "prod"
    flags_content = file("../config/flags.json")
    alarm_arns    = ["arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:api-5xx", "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:model-errors"]
    rollout       = { final_bake_time_minutes = 15 }
  }

  assert {
    condition     = aws_appconfig_application.this.name == "mangaassist-test" && aws_appconfig_environment.this[0].name == "prod" && aws_appconfig_configuration_profile.flags.name == "feature-flags"
    error_message = "application <prefix>, environment var.environment, profile feature-flags"
  }
  assert {
    condition     = aws_appconfig_configuration_profile.flags.type == "AWS.Freeform" && aws_appconfig_configuration_profile.flags.location_uri == "hosted" && one(aws_appconfig_configuration_profile.flags.validator).type == "JSON_SCHEMA"
    error_message = "a hosted freeform profile (what Powertools reads) with a JSON Schema validator"
  }
  assert {
    condition     = aws_appconfig_hosted_configuration_version.flags.content == file("../config/flags.json") && aws_appconfig_hosted_configuration_version.flags.content_type == "application/json"
    error_message = "the hosted version is config/flags.json"
  }
  assert {
    condition     = aws_appconfig_deployment_strategy.rollout[0].growth_type == "EXPONENTIAL" && aws_appconfig_deployment_strategy.rollout[0].growth_factor == 12.5 && aws_appconfig_deployment_strategy.rollout[0].final_bake_time_in_minutes == 15
    error_message = "12.5% -> 25% -> 50% -> 100%, and the bake time from the variable"
  }
  assert {
    condition     = toset([for m in aws_appconfig_environment.this[0].monitor : m.alarm_arn]) == toset(["arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:api-5xx", "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:model-errors"]) && alltrue([for m in aws_appconfig_environment.this[0].monitor : m.alarm_role_arn == aws_iam_role.monitor[0].arn])
    error_message = "the environment's monitors are the alarms, read with the monitor role"
  }
  assert {
    condition     = one(data.aws_iam_policy_document.monitor[0].statement).actions == toset(["cloudwatch:DescribeAlarms"]) && toset(one(data.aws_iam_policy_document.monitor[0].statement).resources) == toset(["arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:api-5xx", "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:model-errors"])
    error_message = "the monitor role may describe the monitored alarms, nothing else"
  }
  assert {
    condition     = aws_appconfig_deployment.flags[0].configuration_version == tostring(aws_appconfig_hosted_configuration_version.flags.version_number) && aws_appconfig_deployment.flags[0].deployment_strategy_id == aws_appconfig_deployment_strategy.rollout[0].id && aws_appconfig_deployment.flags[0].environment_id == aws_appconfig_environment.this[0].environment_id
    error_message = "the hosted version is deployed to the environment with the monitored strategy"
  }
}

run "flags_without_environment_for_emulators" {
  command = plan
  module {
    source = "./modules/flags"
  }
  variables {
    environment                       = "dev"
    flags_content                     = file("../config/flags.json")
    create_environment_and_deployment = false
  }

  assert {
    condition     = length(aws_appconfig_environment.this) == 0 && length(aws_appconfig_deployment.flags) == 0 && length(aws_appconfig_deployment_strategy.rollout) == 0 && output.environment_name == "dev"
    error_message = "the environment, strategy and deployment are behind a variable; the functions still get the environment's name"
  }
}

run "root_flags_roll_back_on_the_api_5xx_and_model_errors_alarms" {
  command = apply
  variables {
    flags_rollout = { final_bake_time_minutes = 30 }
  }
  # Two alarms need two ARNs (the mock gives every alarm the same one), set when they are created:
  # this run has a state of its own.
  state_key = "distinct_alarm_arns"
  override_resource {
    target = module.observability.aws_cloudwatch_metric_alarm.api_5xx
    values = { arn = "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:mangaassist-test-api-5xx" }
  }
  override_resource {
    target = module.observability.aws_cloudwatch_metric_alarm.model_errors
    values = { arn = "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:mangaassist-test-model-errors" }
  }

  assert {
    condition     = toset(module.flags.monitored_alarm_arns) == toset(module.observability.rollback_alarm_arns) && length(module.flags.monitored_alarm_arns) == 2
    error_message = "the flags environment watches the API 5XX and the model-errors alarms"
  }
  assert {
    condition     = module.observability.alarm_names.model_errors == "mangaassist-test-model-errors" && module.observability.alarm_names.api_5xx == "mangaassist-test-api-5xx"
    error_message = "both alarms exist"
  }
  assert {
    condition     = output.flags.application == "mangaassist-test" && output.flags.profile == "feature-flags" && output.flags.environment == "dev"
    error_message = "where the flags are is an output"
  }
}

run "bad_input_a_flags_rollout_growth_of_zero" {
  command = plan
  variables {
    flags_rollout = { growth_factor = 0 }
  }
  expect_failures = [var.flags_rollout]
}
