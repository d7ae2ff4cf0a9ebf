# One execution role per function, each allowed only what that function does; every function
# publishes a version per change and is invoked through its alias (var.alias_name), which
# carries the provisioned concurrency of the latency-sensitive ones.
data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  log_group_arn = {
    for name in keys(var.functions) :
    name => "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:/aws/lambda/${var.name_prefix}-${name}"
  }
}

resource "aws_lambda_layer_version" "shared" {
  layer_name               = "${var.name_prefix}-shared"
  description              = "mangaassist package, contracts and the hashed runtime lock's packages"
  filename                 = var.layer.filename
  source_code_hash         = var.layer.source_code_hash
  compatible_runtimes      = [var.runtime]
  compatible_architectures = [var.architecture]
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = var.functions
  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function" {
  for_each = var.functions

  # Logs only to its own group: the log group is created here, so no CreateLogGroup.
  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn[each.key]}:*"]
  }

  # X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
  dynamic "statement" {
    for_each = var.tracing_mode == "Active" ? [1] : []
    content {
      sid       = "Traces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = each.value.policy_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = var.functions
  name     = "least-privilege"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

resource "aws_cloudwatch_log_group" "function" {
  for_each          = var.functions
  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_116:Asynchronous invocations (the bus's targets) have an on-failure destination to their target's DLQ (event_bus module), which supersedes a function DLQ
  #checkov:skip=CKV_AWS_117:No VPC resources to reach: the functions call AWS APIs (DynamoDB, S3, EventBridge, Bedrock, OpenSearch Serverless) with IAM, and a VPC would need NAT or endpoints for each
  #checkov:skip=CKV_AWS_272:Code signing is not used: zips are built reproducibly from the hashed locks and deployed by source_code_hash from build/manifest.json
  #checkov:skip=CKV_AWS_173:Environment variables hold names and settings, no secrets (those are in Secrets Manager); Lambda encrypts them at rest with its AWS-managed key, or var.kms_key_arn when given
  for_each                       = var.functions
  function_name                  = "${var.name_prefix}-${each.key}"
  description                    = each.value.description
  role                           = aws_iam_role.function[each.key].arn
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  handler                        = "handler.lambda_handler"
  filename                       = each.value.filename
  source_code_hash               = each.value.source_code_hash
  layers                         = [aws_lambda_layer_version.shared.arn]
  timeout                        = each.value.timeout
  memory_size                    = each.value.memory_size
  reserved_concurrent_executions = each.value.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn
  publish                        = true

  environment {
    variables = merge({
      POWERTOOLS_SERVICE_NAME = "mangaassist"
      POWERTOOLS_LOG_LEVEL    = "INFO"
    }, each.value.environment)
  }

  tracing_config {
    mode = var.tracing_mode
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tags       = var.tags
  depends_on = [aws_iam_role_policy.function]

  lifecycle {
    # Lambda refuses more than 4 KB of environment variables (names and values together).
    precondition {
      condition     = sum([for k, v in merge({ POWERTOOLS_SERVICE_NAME = "mangaassist", POWERTOOLS_LOG_LEVEL = "INFO" }, each.value.environment) : length(k) + length(v)]) <= 4096
      error_message = "${each.key}'s environment variables pass Lambda's 4 KB."
    }
  }
}

# Every invocation goes through the alias: API Gateway, the function URL, the bus's targets and
# queue consumers name it, so it is where provisioned concurrency and failure destinations live.
resource "aws_lambda_alias" "live" {
  for_each         = var.functions
  name             = var.alias_name
  description      = "What every trigger invokes: the version this apply published."
  function_name    = aws_lambda_function.function[each.key].function_name
  function_version = aws_lambda_function.function[each.key].version
}

resource "aws_lambda_provisioned_concurrency_config" "live" {
  for_each                          = { for k, f in var.functions : k => f if f.provisioned_concurrency > 0 }
  function_name                     = aws_lambda_alias.live[each.key].function_name
  qualifier                         = aws_lambda_alias.live[each.key].name
  provisioned_concurrent_executions = each.value.provisioned_concurrency
}
