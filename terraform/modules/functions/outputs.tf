output "function_names" {
  description = "Deployed function name by logical name."
  value       = { for k, f in aws_lambda_function.function : k => f.function_name }
}

output "function_arns" {
  description = "Function ARN by logical name."
  value       = { for k, f in aws_lambda_function.function : k => f.arn }
}

output "invoke_arns" {
  description = "Invoke ARN by logical name, for API Gateway integrations."
  value       = { for k, f in aws_lambda_function.function : k => f.invoke_arn }
}

output "role_names" {
  description = "Execution role name by logical name."
  value       = { for k, r in aws_iam_role.function : k => r.name }
}

output "role_arns" {
  description = "Execution role ARN by logical name."
  value       = { for k, r in aws_iam_role.function : k => r.arn }
}

output "layer_arn" {
  description = "ARN of the shared layer version."
  value       = aws_lambda_layer_version.shared.arn
}

output "log_group_names" {
  description = "CloudWatch log group name by logical name."
  value       = { for k, g in aws_cloudwatch_log_group.function : k => g.name }
}
