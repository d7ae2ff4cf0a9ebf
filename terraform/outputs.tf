output "function_names" {
  description = "Deployed Lambda function name by logical name."
  value       = module.functions.function_names
}

output "layer_arn" {
  description = "ARN of the shared layer version every function uses."
  value       = module.functions.layer_arn
}
