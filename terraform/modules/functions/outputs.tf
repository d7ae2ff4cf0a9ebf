output "function_names" {
  description = "Deployed function name by logical name."
  value       = { for k, f in aws_lambda_function.function : k => f.function_name }
}

output "function_arns" {
  description = "Function ARN by logical name."
  value       = { for k, f in aws_lambda_function.function : k => f.arn }
}

output "alias_name" {
  description = "The alias every trigger invokes (a permission's, URL's or config's qualifier). Read from the aliases themselves, so whatever names it as a qualifier is created after them: Lambda answers \"Function not found\" for a qualifier that does not exist yet."
  value       = one(distinct([for a in aws_lambda_alias.live : a.name]))
}

output "alias_arns" {
  description = "ARN of each function's alias (function ARN:alias), what rule targets and queue consumers name."
  value       = { for k, a in aws_lambda_alias.live : k => a.arn }
}

output "invoke_arns" {
  description = "Invoke ARN of each function's alias by logical name, for API Gateway integrations."
  value       = { for k, a in aws_lambda_alias.live : k => a.invoke_arn }
}

output "versions" {
  description = "The version each alias points at (published by this apply)."
  value       = { for k, f in aws_lambda_function.function : k => f.version }
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

output "environment_variables" {
  description = "Each function's environment variables (settings and names only: secrets are in Secrets Manager)."
  value       = { for k, f in aws_lambda_function.function : k => f.environment[0].variables }
}
