# The clients' REST API: the committed OpenAPI document (schemas/api/openapi.json, `make openapi`
# from wiring.json's routes and schemas/api) with API Gateway's extensions added here: per
# operation a Lambda proxy integration on its function's alias and, where it has a body or
# parameters, the request validator (bad bodies get API Gateway's own 400 {"message": "Invalid
# request body"} before a Lambda runs); the Lambda REQUEST authorizers on the routes that name
# them; API keys with a usage plan; a redeployment whenever the body changes; access and execution
# logs, X-Ray, stage and per-key throttling, and an optional WAF web ACL.
data "aws_partition" "current" {}

locals {
  routes = { for key, r in var.routes : key => merge(r, { method = split(" ", key)[0], path = split(" ", key)[1] }) }
  # Without a document (the module alone, in tests), a minimal one from the routes (var.document's
  # validation refuses one that is not JSON, so try() falls back only when it is null).
  base = try(jsondecode(var.document), {
    openapi = "3.0.1"
    info    = { title = "${var.name_prefix}-api", version = "1" }
    paths = {
      for path in distinct([for r in values(local.routes) : r.path]) : path => {
        for r in values(local.routes) : lower(r.method) => {
          security  = r.api_key_required ? [{ api_key = [] }] : []
          responses = { "200" = { description = "OK" } }
        } if r.path == path
      }
    }
  })
  operations = flatten([for path, ops in local.base.paths : [for method in keys(ops) : "${upper(method)} ${path}"]])
  validator  = "body-and-parameters"

  # A REQUEST authorizer with no identity sources runs on every request, anonymous ones too (the
  # function decides: anonymous is the free tier unless JWT_REQUIRED); its result is cached for
  # result_ttl_seconds (0: never, as caching needs identity sources).
  authorizer_schemes = {
    for name, a in var.authorizers : name => {
      type                           = "apiKey"
      name                           = "Unused"
      in                             = "header"
      "x-amazon-apigateway-authtype" = "custom"
      "x-amazon-apigateway-authorizer" = {
        type                         = "request"
        authorizerUri                = a.invoke_arn
        authorizerResultTtlInSeconds = a.result_ttl_seconds
      }
    }
  }

  paths = {
    for path, ops in local.base.paths : path => {
      for method, op in ops : method => merge(
        op,
        {
          "x-amazon-apigateway-integration" = {
            type                = "aws_proxy"
            httpMethod          = "POST"
            uri                 = var.invoke_arns[local.routes["${upper(method)} ${path}"].function]
            passthroughBehavior = "when_no_match"
          }
        },
        can(op.requestBody) || can(op.parameters) ? { "x-amazon-apigateway-request-validator" = local.validator } : {},
        # The route's authorizer joins every security requirement (AND with the API key).
        local.routes["${upper(method)} ${path}"].authorizer == null ? {} : {
          security = [for requirement in(length(try(op.security, [])) == 0 ? [{}] : op.security) : merge(requirement, { (local.routes["${upper(method)} ${path}"].authorizer) = [] })]
        },
      )
    }
  }

  # The document's own security schemes describe the API to clients (its bearer scheme is the
  # optional JWT); API Gateway gets the API key and the Lambda authorizers that enforce them.
  openapi = jsonencode(merge(local.base, {
    paths = local.paths
    components = merge(try(local.base.components, {}), {
      securitySchemes = merge({ api_key = { type = "apiKey", name = "x-api-key", in = "header" } }, local.authorizer_schemes)
    })
    "x-amazon-apigateway-request-validators" = {
      (local.validator) = { validateRequestBody = true, validateRequestParameters = true }
    }
  }))
  # A route's own throttle overrides the stage's for that method (method path: "v1/search/GET").
  route_throttles = { for key, r in local.routes : "${trimprefix(r.path, "/")}/${r.method == "ANY" ? "*" : r.method}" => r.throttle if r.throttle != null }
}

resource "aws_api_gateway_rest_api" "this" {
  name        = "${var.name_prefix}-api"
  description = "MangaAssist client API"
  body        = local.openapi
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  tags = var.tags
  lifecycle {
    create_before_destroy = true # a replaced API is up before the old one goes
    precondition {
      condition     = toset(local.operations) == toset(keys(var.routes))
      error_message = "The OpenAPI document's operations (${join(", ", sort(local.operations))}) differ from wiring.json's routes (${join(", ", sort(keys(var.routes)))}): run `make openapi`."
    }
    precondition {
      condition     = alltrue([for r in values(var.routes) : r.authorizer == null || contains(keys(var.authorizers), coalesce(r.authorizer, "-"))])
      error_message = "A route names an authorizer that var.authorizers does not define."
    }
  }
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

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days per environment (environments/*.tfvars): a year in production, less for throwaway ones
  name              = "/aws/apigateway/${var.name_prefix}-api/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV2_AWS_77:The web ACL always has the Log4j rules (AWSManagedRulesKnownBadInputsRuleSet); this check also demands AWSManagedRulesAnonymousIpList, whose hosting-provider list blocks the store's own backends calling from cloud hosts: add it with var.waf.managed_rule_groups where that is wanted
  #checkov:skip=CKV2_AWS_29:The web ACL is associated when var.waf.enabled (the default, and prod.tfvars); only a dev deployment turns it off, and checkov cannot follow the counted association
  #checkov:skip=CKV_AWS_120:Answers are per client and per query (search, chat); a stage cache would serve one client's answer to another
  #checkov:skip=CKV2_AWS_51:Clients are apps on the public internet with API keys; mutual TLS client certificates are for a backend that trusts API Gateway, and the backend is Lambda (IAM)
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = var.xray_tracing
  # Functions read the environment from the proxy event's stageVariables.
  variables = { environment = var.environment }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId        = "$context.requestId"
      extendedId       = "$context.extendedRequestId"
      apiKeyId         = "$context.identity.apiKeyId"
      sourceIp         = "$context.identity.sourceIp"
      requestTime      = "$context.requestTimeEpoch"
      httpMethod       = "$context.httpMethod"
      resourcePath     = "$context.resourcePath"
      status           = "$context.status"
      latencyMs        = "$context.responseLatency"
      integrationMs    = "$context.integration.latency"
      integrationError = "$context.integration.error"
      responseLength   = "$context.responseLength"
      wafStatus        = "$context.waf.status"
      xrayTraceId      = "$context.xrayTraceId"
    })
  }

  tags       = var.tags
  depends_on = [aws_api_gateway_account.this]
}

# Execution logging writes with an account-wide role: one per account and region, so a second
# deployment in the same account sets manage_account_cloudwatch_role = false.
data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cloudwatch" {
  count              = var.manage_account_cloudwatch_role ? 1 : 0
  name               = "${var.name_prefix}-apigw-cloudwatch"
  assume_role_policy = data.aws_iam_policy_document.apigateway_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "cloudwatch" {
  count      = var.manage_account_cloudwatch_role ? 1 : 0
  role       = aws_iam_role.cloudwatch[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count               = var.manage_account_cloudwatch_role ? 1 : 0
  cloudwatch_role_arn = aws_iam_role.cloudwatch[0].arn
  reset_on_delete     = true
  depends_on          = [aws_iam_role_policy_attachment.cloudwatch]
}

# Every method of the stage: metrics, execution logs and the stage-wide throttle.
resource "aws_api_gateway_method_settings" "all" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    #checkov:skip=CKV_AWS_225:No stage cache, see the stage's CKV_AWS_120
    metrics_enabled        = true
    logging_level          = var.execution_logging_level
    data_trace_enabled     = false # full request/response bodies would put users' messages in the logs
    throttling_rate_limit  = var.stage_throttle.rate_limit
    throttling_burst_limit = var.stage_throttle.burst_limit
  }
}

resource "aws_api_gateway_method_settings" "route" {
  for_each    = local.route_throttles
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = each.key

  settings {
    #checkov:skip=CKV_AWS_225:No stage cache, see the stage's CKV_AWS_120
    metrics_enabled        = true
    logging_level          = var.execution_logging_level
    data_trace_enabled     = false
    throttling_rate_limit  = each.value.rate_limit
    throttling_burst_limit = each.value.burst_limit
  }
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
  qualifier     = var.qualifier
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${aws_api_gateway_stage.this.stage_name}/*"
}

# API Gateway creates the authorizers from the body (their ids are its own): any authorizer of
# this API may invoke the authorizer functions.
resource "aws_lambda_permission" "authorizer" {
  for_each      = var.authorizers
  statement_id  = "api-gateway-authorizer-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function_name
  qualifier     = var.qualifier
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/authorizers/*"
}

# The optional web ACL: a rate limit per client IP, AWS's known-bad-inputs rules (Log4j's JNDI
# lookups among them) always, then the managed rule groups var.waf lists.
resource "aws_wafv2_web_acl" "api" {
  count       = var.waf.enabled ? 1 : 0
  name        = "${var.name_prefix}-api"
  description = "Rate limit per IP and AWS managed rules in front of the clients' API."
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "rate-per-ip"
    priority = 0
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf.rate_limit_per_5_minutes
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-rate-per-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = { for i, name in var.waf.managed_rule_groups : name => i + 2 }
    content {
      name     = rule.key
      priority = rule.value
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.key
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name_prefix}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name_prefix}-api"
    sampled_requests_enabled   = true
  }
  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "api" {
  count        = var.waf.enabled ? 1 : 0
  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = aws_wafv2_web_acl.api[0].arn
}

# WAF's log group name must start with aws-waf-logs-.
resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days per environment (environments/*.tfvars)
  count             = var.waf.enabled ? 1 : 0
  name              = "aws-waf-logs-${var.name_prefix}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  count                   = var.waf.enabled ? 1 : 0
  resource_arn            = aws_wafv2_web_acl.api[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}
