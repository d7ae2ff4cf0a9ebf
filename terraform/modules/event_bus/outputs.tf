output "bus_name" {
  description = "Name of the custom event bus."
  value       = aws_cloudwatch_event_bus.this.name
}

output "bus_arn" {
  description = "ARN of the custom event bus."
  value       = aws_cloudwatch_event_bus.this.arn
}

output "archive_name" {
  description = "Name of the archive that replays read from."
  value       = aws_cloudwatch_event_archive.this.name
}

output "archive_arn" {
  description = "ARN of the archive."
  value       = aws_cloudwatch_event_archive.this.arn
}

output "rule_arns" {
  description = "Rule ARN by rule name."
  value       = { for k, r in aws_cloudwatch_event_rule.this : k => r.arn }
}

output "dlq_urls" {
  description = "Dead-letter queue URL by rule/target."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.url }
}

output "dlq_arns" {
  description = "Dead-letter queue ARN by rule/target."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.arn }
}

output "queue_arns" {
  description = "Target queue ARN by logical name."
  value       = { for k, q in aws_sqs_queue.target : k => q.arn }
}

output "queue_dlq_arns" {
  description = "Redrive DLQ ARN of each target queue."
  value       = { for k, q in aws_sqs_queue.target_dlq : k => q.arn }
}

output "schema_registry_name" {
  description = "Schema registry holding the contracts."
  value       = aws_schemas_registry.this.name
}

output "failure_destinations" {
  description = "The DLQ ARN each Lambda target function sends its failed asynchronous invocations to (its role needs sqs:SendMessage on it)."
  value       = { for fn, t in local.failure_destinations : fn => aws_sqs_queue.dlq[t.key].arn }
}
