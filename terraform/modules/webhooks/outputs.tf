output "function_url" {
  description = "Base URL of the ingress function."
  value       = aws_lambda_function_url.ingress.function_url
}

output "source_urls" {
  description = "The URL each partner posts its webhooks to."
  value       = { for name, _ in var.sources : name => "${trimsuffix(aws_lambda_function_url.ingress.function_url, "/")}/webhooks/${name}" }
}

output "secret_arns" {
  description = "Secret ARN by source."
  value       = { for k, s in aws_secretsmanager_secret.source : k => s.arn }
}

output "secret_prefix" {
  description = "What the ingress function prepends to a source name to find its secret."
  value       = "${var.name_prefix}/webhooks/"
}

output "secret_names" {
  description = "Secret name by source."
  value       = { for k, s in aws_secretsmanager_secret.source : k => s.name }
}
