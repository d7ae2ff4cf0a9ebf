output "application_name" {
  description = "The AppConfig application (APPCONFIG_APPLICATION)."
  value       = aws_appconfig_application.this.name
}

output "application_id" {
  description = "The AppConfig application's id."
  value       = aws_appconfig_application.this.id
}

output "environment_name" {
  description = "The AppConfig environment the functions read (APPCONFIG_ENVIRONMENT): var.environment, not read from the resource, so the functions need not wait for it (its monitors watch alarms on the API that invokes them)."
  value       = var.environment
}

output "environment_id" {
  description = "The environment's id (null when create_environment_and_deployment is off)."
  value       = one(aws_appconfig_environment.this[*].environment_id)
}

output "profile_name" {
  description = "The feature-flags configuration profile (APPCONFIG_PROFILE)."
  value       = aws_appconfig_configuration_profile.flags.name
}

output "profile_id" {
  description = "The configuration profile's id."
  value       = aws_appconfig_configuration_profile.flags.configuration_profile_id
}

output "configuration_arn" {
  description = "What flags:read grants appconfig:StartConfigurationSession and GetLatestConfiguration on: the flags profile through this application's environments."
  value       = local.configuration_arn
}

output "hosted_version" {
  description = "The hosted configuration version this apply created from the flags file."
  value       = aws_appconfig_hosted_configuration_version.flags.version_number
}

output "deployment_strategy_id" {
  description = "The gradual, alarm-monitored deployment strategy (null when create_environment_and_deployment is off)."
  value       = one(aws_appconfig_deployment_strategy.rollout[*].id)
}

output "monitor_role_arn" {
  description = "The role AppConfig reads the monitored alarms with (null without alarms)."
  value       = one(aws_iam_role.monitor[*].arn)
}

output "monitored_alarm_arns" {
  description = "The alarms the environment's monitors watch during a deployment (empty when create_environment_and_deployment is off)."
  value       = flatten([for e in aws_appconfig_environment.this : [for m in e.monitor : m.alarm_arn]])
}
