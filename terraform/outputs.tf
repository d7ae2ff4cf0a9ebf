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

output "websocket_url" {
  description = "Where clients open the streaming chat: wss://<api id>.execute-api.<region>.amazonaws.com/<stage> (send the API key as ?x-api-key= or a header, a token as ?token=)."
  value       = module.websocket.url
}

output "websocket_callback_url" {
  description = "The WebSocket stage's @connections endpoint the functions post frames to (their WEBSOCKET_CALLBACK_URL)."
  value       = module.websocket.callback_url
}

output "flags" {
  description = "Where the feature flags live (ops.py flags push): AppConfig application, environment and profile names, and the deployment strategy."
  value = {
    application            = module.flags.application_name
    environment            = module.flags.environment_name
    profile                = module.flags.profile_name
    deployment_strategy_id = module.flags.deployment_strategy_id
  }
}

output "function_environment_keys" {
  description = "The environment variables each function gets, by function, sorted (a test compares them with mangaassist/settings.py's names)."
  value       = { for name, env in module.functions.environment_variables : name => sort(keys(env)) }
}

output "api_key_id" {
  description = "Id of the clients' API key."
  value       = module.api.api_key_id
}

output "names" {
  description = "Every resource name by kind and wiring key (bus, archive, functions, tables, buckets, queues, queue_dlqs, rules, target_dlqs, webhook secrets): what scripts/ops.py reads instead of guessing names from the prefix."
  value       = local.names
}

output "name_prefix_max_length" {
  description = "The longest name_prefix the current wiring.json allows (the service limit the longest derived name reaches first)."
  value       = local.name_prefix_max_length
}

output "environment" {
  description = "The environment this deployment is (the REST stage's `environment` variable)."
  value       = var.environment
}

output "alarm_topic_arn" {
  description = "The SNS topic every alarm notifies: subscribe on-call here (or set alarm_subscribers)."
  value       = module.observability.topic_arn
}

output "dashboard_url" {
  description = "The CloudWatch dashboard."
  value       = "https://${var.region}.console.aws.amazon.com/cloudwatch/home?region=${var.region}#dashboards/dashboard/${module.observability.dashboard_name}"
}

output "function_alias" {
  description = "The alias every trigger invokes (provisioned concurrency and failure destinations live on it)."
  value       = module.functions.alias_name
}

output "build_version" {
  description = "The build every function runs (build/manifest.json's build_version, each function's BUILD_VERSION)."
  value       = local.build_version
  precondition {
    condition     = can(regex("^[0-9a-f]{12}$", local.build_version))
    error_message = "build/manifest.json has no build_version (it predates it): run `make build` again."
  }
  precondition {
    condition     = length(local.functions_without_zip) == 0
    error_message = "The build (${local.manifest_path}) has no zip for ${join(", ", local.functions_without_zip)}, which wiring.json deploys: each needs functions/<name>/handler.py, then `make build`."
  }
}
