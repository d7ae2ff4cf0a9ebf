output "function_names" {
  description = "Deployed Lambda function name by logical name."
  value       = module.functions.function_names
}

output "layer_arn" {
  description = "ARN of the shared layer version every function uses."
  value       = module.functions.layer_arn
}

output "event_bus_name" {
  description = "The custom event bus every event travels on."
  value       = module.event_bus.bus_name
}

output "archive_name" {
  description = "Archive to replay from: scripts/ops.py replay --archive <this>."
  value       = module.event_bus.archive_name
}

output "dead_letter_queues" {
  description = "DLQ URL by rule/target: scripts/ops.py redrive --dlq <name>."
  value       = module.event_bus.dlq_urls
}

output "tables" {
  description = "DynamoDB table name by logical name."
  value       = module.data.table_names
}

output "buckets" {
  description = "S3 bucket name by logical name."
  value       = module.data.bucket_names
}

output "webhook_urls" {
  description = "The URL each partner posts its signed webhooks to."
  value       = module.webhooks.source_urls
}

output "api_url" {
  description = "Base URL of the clients' REST API (send x-api-key)."
  value       = module.api.url
}

output "api_key_id" {
  description = "Id of the clients' API key."
  value       = module.api.api_key_id
}
