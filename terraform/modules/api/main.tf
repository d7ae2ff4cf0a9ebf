# The clients' REST API: an OpenAPI body generated from wiring.json's routes, Lambda proxy
# integrations, an API key with a usage plan, and a redeployment whenever the body changes.
locals {
  routes = { for key, r in var.routes : key => merge(r, { method = split(" ", key)[0], path = split(" ", key)[1] }) }
  openapi = jsonencode({
    openapi = "3.0.1"
    info    = { title = "${var.name_prefix}-api", version = "1" }
    paths = {
      for path in distinct([for r in values(local.routes) : r.path]) : path => {
        for r in values(local.routes) : (r.method == "ANY" ? "x-amazon-apigateway-any-method" : lower(r.method)) => {
          security = r.api_key_required ? [{ api_key = [] }] : []
          "x-amazon-apigateway-integration" = {
            type       = "aws_proxy"
            httpMethod = "POST"
            uri        = var.invoke_arns[r.function]
          }
        } if r.path == path
      }
    }
    components = {
      securitySchemes = { api_key = { type = "apiKey", name = "x-api-key", in = "header" } }
    }
  })
}

resource "aws_api_gateway_rest_api" "this" {
  name        = "${var.name_prefix}-api"
  description = "MangaAssist client API"
  body        = local.openapi
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  tags = var.tags
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  triggers = {
    redeployment = sha1(local.openapi)
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_stage" "this" {
  rest_api_id   = aws_api_gateway_rest_api.this.id
  deployment_id = aws_api_gateway_deployment.this.id
  stage_name    = var.stage_name
  tags          = var.tags
}

resource "aws_api_gateway_api_key" "clients" {
  name = "${var.name_prefix}-clients"
  tags = var.tags
}

resource "aws_api_gateway_usage_plan" "clients" {
  name = "${var.name_prefix}-clients"
  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }
  throttle_settings {
    rate_limit  = var.throttle.rate_limit
    burst_limit = var.throttle.burst_limit
  }
  quota_settings {
    limit  = var.throttle.daily_quota
    period = "DAY"
  }
  tags = var.tags
}

resource "aws_api_gateway_usage_plan_key" "clients" {
  key_id        = aws_api_gateway_api_key.clients.id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.clients.id
}

resource "aws_lambda_permission" "api" {
  for_each      = toset([for r in values(local.routes) : r.function])
  statement_id  = "api-gateway"
  action        = "lambda:InvokeFunction"
  function_name = var.function_names[each.key]
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${aws_api_gateway_stage.this.stage_name}/*"
}
