# The partners' front door: a public function URL (the signature is the authentication) and one
# secret per source. A secret holds {"secrets": [...], "public_keys": [...]}: every listed secret
# is active, so a rotation adds the new one, waits for the partner to switch, then drops the old.
resource "aws_secretsmanager_secret" "source" {
  #checkov:skip=CKV2_AWS_57:Partners issue these signing secrets; they rotate on the partner's schedule by adding the new secret to the list (README, Deploy), which a Lambda rotation cannot do
  #checkov:skip=CKV_AWS_149:Encrypted with Secrets Manager's AWS-managed key unless var.kms_key_arn names a customer-managed one
  for_each                = var.sources
  name                    = "${var.name_prefix}/webhooks/${each.key}"
  description             = "Signing secrets of the ${each.key} webhook source (${each.value.scheme})."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = var.tags
}

resource "aws_lambda_function_url" "ingress" {
  #checkov:skip=CKV_AWS_258:Partners post server to server without AWS credentials; every request's signature is verified by the function (per-source scheme, rotated secrets, replay window)
  function_name      = var.function_name
  qualifier          = var.qualifier
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"

  dynamic "cors" {
    for_each = length(var.cors_allow_origins) > 0 ? [1] : []
    content {
      allow_origins = var.cors_allow_origins
      allow_methods = ["POST"]
    }
  }
}

# Since October 2025 a public function URL needs both permissions.
resource "aws_lambda_permission" "url" {
  #checkov:skip=CKV_AWS_301:The public function URL is the partners' front door; the webhook signature is the authentication
  statement_id           = "function-url-public"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = var.function_name
  qualifier              = var.qualifier
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "url_invoke" {
  #checkov:skip=CKV_AWS_301:Since October 2025 a public function URL also needs lambda:InvokeFunction, which provider 5.x cannot condition on lambda:InvokedViaFunctionUrl; the signature is the authentication
  statement_id  = "function-url-public-invoke"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  qualifier     = var.qualifier
  principal     = "*"
}

# The claim's completion is written after the answer: when it fails, the delivery is accepted and
# published, but a retry after the claim lapses would be processed again. The function logs each.
resource "aws_cloudwatch_log_metric_filter" "claim_not_completed" {
  name           = "${var.name_prefix}-webhook-claim-not-completed"
  log_group_name = var.log_group_name
  pattern        = "\"its claim was not completed\""

  metric_transformation {
    name          = "ClaimNotCompleted"
    namespace     = "MangaAssist/Webhooks"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "claim_not_completed" {
  alarm_name          = "${var.name_prefix}-webhook-claim-not-completed"
  alarm_description   = "Accepted webhooks whose idempotency claim was not completed: a partner's retry after the claim lapses publishes its events again. Check the idempotency table's throttling and the ingress logs."
  namespace           = "MangaAssist/Webhooks"
  metric_name         = "ClaimNotCompleted"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}
