output "topic_arn" {
  description = "The SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_actions" {
  description = "What every alarm notifies: the topic and var.extra_alarm_actions (for alarms defined in other modules)."
  value       = local.actions
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "Every alarm defined here, by kind and key."
  value = {
    lambda_errors           = { for k, a in aws_cloudwatch_metric_alarm.lambda_errors : k => a.alarm_name }
    lambda_throttles        = { for k, a in aws_cloudwatch_metric_alarm.lambda_throttles : k => a.alarm_name }
    api_5xx                 = aws_cloudwatch_metric_alarm.api_5xx.alarm_name
    api_latency             = aws_cloudwatch_metric_alarm.api_latency.alarm_name
    model_errors            = aws_cloudwatch_metric_alarm.model_errors.alarm_name
    rule_failed_invocations = { for k, a in aws_cloudwatch_metric_alarm.rule_failed_invocations : k => a.alarm_name }
    table_throttles         = { for k, a in aws_cloudwatch_metric_alarm.table_throttles : k => a.alarm_name }
    queue_age               = { for k, a in aws_cloudwatch_metric_alarm.queue_age : k => a.alarm_name }
  }
}

output "rollback_alarm_arns" {
  description = "The alarms a feature-flag deployment rolls back on: the API's 5XX rate and the model fallback rate."
  value       = [aws_cloudwatch_metric_alarm.api_5xx.arn, aws_cloudwatch_metric_alarm.model_errors.arn]
}
