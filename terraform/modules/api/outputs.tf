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
