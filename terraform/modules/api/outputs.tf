output "url" {
  description = "Base URL of the stage."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "api_key_id" {
  description = "Id of the clients' API key (its value: aws apigateway get-api-key --include-value --api-key <id>)."
  value       = aws_api_gateway_api_key.clients.id
}

output "openapi" {
  description = "The OpenAPI body the API was deployed from."
  value       = local.openapi
}

output "api_name" {
  description = "The REST API's name (the ApiName dimension of its CloudWatch metrics)."
  value       = aws_api_gateway_rest_api.this.name
}

output "stage_name" {
  description = "The stage's name (the Stage dimension of its CloudWatch metrics)."
  value       = aws_api_gateway_stage.this.stage_name
}

output "access_log_group_name" {
  description = "The access log group (JSON lines: request id, key id, latency, status...)."
  value       = aws_cloudwatch_log_group.access.name
}

output "web_acl_arn" {
  description = "The WAF web ACL on the stage (null when var.waf.enabled is false)."
  value       = one(aws_wafv2_web_acl.api[*].arn)
}

output "execution_logging_level" {
  description = "The stages' execution logging level, known once the account's CloudWatch role is set (when this module manages it): another API's stage that logs should wait for it."
  value       = var.execution_logging_level
  depends_on  = [aws_api_gateway_account.this]
}
