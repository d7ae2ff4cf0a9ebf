# The streaming API: an API Gateway WebSocket API whose routes ($connect, $disconnect, $default,
# sendMessage...) are Lambda proxy integrations on one function's alias; $connect is authorized by
# the Lambda REQUEST authorizer (the API key or JWT a browser sends in the query string or a
# header: browsers cannot set headers on a WebSocket) and needs an API key, which the authorizer
# returns as usageIdentifierKey; a usage plan covers the stage. The stage throttles, logs JSON
# access lines, and is where the functions post frames back (@connections).
locals {
  # Routes API Gateway names with a $ are its own; the others are the route selection's values.
  route_keys = toset(var.routes)
  # api_endpoint is wss://<api id>.execute-api.<region>.amazonaws.com; @connections is its https twin.
  callback = "${replace(aws_apigatewayv2_api.this.api_endpoint, "wss://", "https://")}/${var.stage_name}"
}

resource "aws_apigatewayv2_api" "this" {
  name                         = "${var.name_prefix}-websocket"
  description                  = "MangaAssist streaming chat (WebSocket)"
  protocol_type                = "WEBSOCKET"
  route_selection_expression   = var.route_selection_expression
  api_key_selection_expression = "$context.authorizer.usageIdentifierKey"
  tags                         = var.tags
}

resource "aws_apigatewayv2_integration" "function" {
  api_id                    = aws_apigatewayv2_api.this.id
  integration_type          = "AWS_PROXY"
  integration_method        = "POST"
  integration_uri           = var.invoke_arn
  content_handling_strategy = "CONVERT_TO_TEXT"
  timeout_milliseconds      = 29000
}

# No identity sources: the authorizer runs on every handshake, with or without a key or token,
# and decides (anonymous handshakes are the free tier unless JWT_REQUIRED). WebSocket authorizers
# cannot cache.
resource "aws_apigatewayv2_authorizer" "this" {
  api_id          = aws_apigatewayv2_api.this.id
  name            = "${var.name_prefix}-websocket-authorizer"
  authorizer_type = "REQUEST"
  authorizer_uri  = var.authorizer_invoke_arn
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:Only $connect can carry an authorizer on a WebSocket API (API Gateway's rule): the other routes run on a connection $connect authorized
  for_each           = local.route_keys
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.function.id}"
  authorization_type = each.key == "$connect" ? "CUSTOM" : "NONE"
  authorizer_id      = each.key == "$connect" ? aws_apigatewayv2_authorizer.this.id : null
  api_key_required   = each.key == "$connect" ? var.api_key_required : false
}

# A new deployment whenever a route, its target or the authorizer changes.
resource "aws_apigatewayv2_deployment" "this" {
  count       = var.create_deployment ? 1 : 0
  api_id      = aws_apigatewayv2_api.this.id
  description = "routes ${join(", ", sort(tolist(local.route_keys)))}"
  triggers = {
    redeployment = sha1(jsonencode([
      [for k, r in aws_apigatewayv2_route.this : [k, r.target, r.authorization_type, r.authorizer_id, r.api_key_required]],
      aws_apigatewayv2_integration.function.integration_uri,
      aws_apigatewayv2_authorizer.this.authorizer_uri,
    ]))
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days per environment (environments/*.tfvars): a year in production, less for throwaway ones
  name              = "/aws/apigateway/${var.name_prefix}-websocket/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_apigatewayv2_stage" "this" {
  #checkov:skip=CKV2_AWS_51:Clients are browsers and apps on the public internet with API keys and optional JWTs; client certificates (mutual TLS) need a custom domain and suit server-to-server callers, and the backend is Lambda (IAM)
  api_id        = aws_apigatewayv2_api.this.id
  name          = var.stage_name
  description   = "Where clients connect and functions post frames (@connections)"
  deployment_id = one(aws_apigatewayv2_deployment.this[*].id)

  default_route_settings {
    throttling_rate_limit    = var.throttle.rate_limit
    throttling_burst_limit   = var.throttle.burst_limit
    logging_level            = var.execution_logging_level
    data_trace_enabled       = false # frames are users' messages
    detailed_metrics_enabled = true
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId        = "$context.requestId"
      extendedId       = "$context.extendedRequestId"
      connectionId     = "$context.connectionId"
      eventType        = "$context.eventType"
      routeKey         = "$context.routeKey"
      apiKeyId         = "$context.identity.apiKeyId"
      sourceIp         = "$context.identity.sourceIp"
      requestTime      = "$context.requestTimeEpoch"
      status           = "$context.status"
      integrationMs    = "$context.integration.latency"
      integrationError = "$context.integration.error"
      authorizerError  = "$context.authorizer.error"
    })
  }
  tags = var.tags
}

# API keys on a WebSocket API count only in a usage plan that covers its stage.
resource "aws_api_gateway_usage_plan" "this" {
  name        = "${var.name_prefix}-websocket"
  description = "The clients' API keys on the WebSocket stage"
  api_stages {
    api_id = aws_apigatewayv2_api.this.id
    stage  = aws_apigatewayv2_stage.this.name
  }
  throttle_settings {
    rate_limit  = var.throttle.rate_limit
    burst_limit = var.throttle.burst_limit
  }
  dynamic "quota_settings" {
    for_each = var.daily_quota == null ? [] : [var.daily_quota]
    content {
      limit  = quota_settings.value
      period = "DAY"
    }
  }
  tags = var.tags
}

resource "aws_api_gateway_usage_plan_key" "this" {
  for_each      = var.api_key_ids
  key_id        = each.value
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this.id
}

resource "aws_lambda_permission" "routes" {
  statement_id  = "websocket-routes"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  qualifier     = var.qualifier
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/${var.stage_name}/*"
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "websocket-authorizer"
  action        = "lambda:InvokeFunction"
  function_name = var.authorizer_function_name
  qualifier     = var.qualifier
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.this.id}"
}
