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

output "rule_names" {
  description = "Rule name by rule key (the wiring's rules and forward-<key> for each forwarding rule)."
  value       = { for k, r in aws_cloudwatch_event_rule.this : k => r.name }
}

output "dlq_names" {
  description = "Dead-letter queue name by rule/target."
  value       = { for k, q in aws_sqs_queue.dlq : k => q.name }
}

output "queue_names" {
  description = "Target queue name by logical name."
  value       = { for k, q in aws_sqs_queue.target : k => q.name }
}

output "queue_dlq_names" {
  description = "Redrive DLQ name of each target queue."
  value       = { for k, q in aws_sqs_queue.target_dlq : k => q.name }
}

output "forwarding_role_arn" {
  description = "The role EventBridge assumes to forward events to other accounts' buses (null without forwarding rules)."
  value       = one(aws_iam_role.forwarding[*].arn)
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
  description = "Schema registry holding the contracts (null when create_schema_registry is off)."
  value       = one(aws_schemas_registry.this[*].name)
}

output "failure_destinations" {
  description = "The DLQ ARN each Lambda target function sends its failed asynchronous invocations to (its role is granted sqs:SendMessage on it here)."
  value       = { for fn, t in local.failure_destinations : fn => aws_sqs_queue.dlq[t.key].arn }
}

output "target_arns" {
  description = "What each rule/target delivers to (a function alias, a queue or another account's bus)."
  value       = { for k, t in aws_cloudwatch_event_target.this : k => t.arn }
}

output "failure_destination_grants" {
  description = "The role each Lambda target function's failure records are sent with, by function (granted sqs:SendMessage on its DLQ)."
  value       = { for fn, p in aws_iam_role_policy.failure_destination : fn => p.role }
}

output "queue_urls" {
  description = "Queue URL by logical name (what functions send to: <QUEUE>_QUEUE_URL)."
  value       = { for k, q in aws_sqs_queue.target : k => q.url }
}

output "queue_dlq_urls" {
  description = "Redrive DLQ URL of each queue (<QUEUE>_DLQ_URL: a consumer that gives up on a message sends it there itself)."
  value       = { for k, q in aws_sqs_queue.target_dlq : k => q.url }
}

output "dlq_alarm_names" {
  description = "The depth alarm of every DLQ: by rule/target, and queue:<name> for each queue's redrive DLQ."
  value       = { for k, a in aws_cloudwatch_metric_alarm.dlq_depth : k => a.alarm_name }
}
