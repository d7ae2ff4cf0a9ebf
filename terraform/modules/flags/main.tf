# Feature flags in AppConfig: an application per deployment, an environment per var.environment,
# one freeform hosted configuration profile holding config/flags.json in Powertools' feature-flags
# schema (Powertools' AppConfigStore reads freeform profiles only: AppConfig's native
# AWS.AppConfig.FeatureFlags type validates its own, different schema and would refuse the file),
# and a gradual deployment of the hosted version that CloudWatch alarms roll back.
data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  create = var.create_environment_and_deployment
  # What a function's role may read: the flags profile, through any environment of this
  # application, which is this deployment's own and holds only its environment. (Naming the
  # environment's id would make the functions wait for the environment, whose monitors watch
  # the API's alarm, whose API invokes the functions: a cycle.)
  configuration_arn = "arn:${data.aws_partition.current.partition}:appconfig:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:application/${aws_appconfig_application.this.id}/environment/*/configuration/${aws_appconfig_configuration_profile.flags.configuration_profile_id}"
}

resource "aws_appconfig_application" "this" {
  name        = var.name_prefix
  description = "MangaAssist feature flags: model per feature and segment, rollouts, kill switches, token budgets, prompt versions, shadow mode."
  tags        = var.tags
}

resource "aws_appconfig_configuration_profile" "flags" {
  application_id     = aws_appconfig_application.this.id
  name               = var.profile_name
  description        = "config/flags.json in Powertools' feature-flags schema (freeform: Powertools reads no other type)."
  location_uri       = "hosted"
  type               = "AWS.Freeform"
  kms_key_identifier = var.kms_key_arn

  # AppConfig refuses a hosted version or deployment that breaks this shape, so a bad
  # `ops.py flags push` fails at the push, not in the functions (which keep their last good one).
  validator {
    type = "JSON_SCHEMA"
    content = jsonencode({
      "$schema" = "http://json-schema.org/draft-04/schema#"
      type      = "object"
      additionalProperties = {
        type     = "object"
        required = ["default"]
        properties = {
          default      = {}
          boolean_type = { type = "boolean" }
          rules = {
            type = "object"
            additionalProperties = {
              type     = "object"
              required = ["when_match", "conditions"]
              properties = {
                when_match = {}
                conditions = {
                  type     = "array"
                  minItems = 1
                  items = {
                    type       = "object"
                    required   = ["action", "key", "value"]
                    properties = { action = { type = "string" }, key = { type = "string" }, value = {} }
                  }
                }
              }
            }
          }
        }
      }
    })
  }
  tags = var.tags
}

resource "aws_appconfig_hosted_configuration_version" "flags" {
  application_id           = aws_appconfig_application.this.id
  configuration_profile_id = aws_appconfig_configuration_profile.flags.configuration_profile_id
  description              = "config/flags.json as of this apply"
  content_type             = "application/json"
  content                  = var.flags_content
}

# Seed 000 asks for 10% -> 50% -> 100%. AppConfig grows linearly or as G*(2^N): EXPONENTIAL with
# G = 12.5 gives 12.5% -> 25% -> 50% -> 100%, the closest it allows (it reaches 50% and 100% at
# the same points and starts near 10%; LINEAR steps of 10 would take ten steps, of 50 skip 10%).
# Each step lasts deployment_duration / steps; the alarms are watched throughout and during the
# final bake, and any of them in ALARM rolls the deployment back.
resource "aws_appconfig_deployment_strategy" "rollout" {
  count                          = local.create ? 1 : 0
  name                           = "${var.name_prefix}-flags-rollout"
  description                    = "${var.rollout.growth_factor}% first, doubling (${var.rollout.growth_type}), over ${var.rollout.duration_minutes} min, then ${var.rollout.final_bake_time_minutes} min of bake under the alarms."
  deployment_duration_in_minutes = var.rollout.duration_minutes
  growth_factor                  = var.rollout.growth_factor
  growth_type                    = var.rollout.growth_type
  final_bake_time_in_minutes     = var.rollout.final_bake_time_minutes
  replicate_to                   = "NONE"
  tags                           = var.tags
}

# AppConfig reads the alarms' states with this role while it deploys.
data "aws_iam_policy_document" "monitor_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["appconfig.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "monitor" {
  count = length(var.alarm_arns) > 0 ? 1 : 0
  statement {
    sid       = "ReadTheMonitoredAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = var.alarm_arns
  }
}

resource "aws_iam_role" "monitor" {
  count              = length(var.alarm_arns) > 0 ? 1 : 0
  name               = "${var.name_prefix}-appconfig-monitor"
  assume_role_policy = data.aws_iam_policy_document.monitor_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "monitor" {
  count  = length(var.alarm_arns) > 0 ? 1 : 0
  name   = "describe-monitored-alarms"
  role   = aws_iam_role.monitor[0].id
  policy = data.aws_iam_policy_document.monitor[0].json
}

resource "aws_appconfig_environment" "this" {
  count          = local.create ? 1 : 0
  application_id = aws_appconfig_application.this.id
  name           = var.environment
  description    = "The ${var.environment} deployment's functions read their flags here."

  dynamic "monitor" {
    for_each = var.alarm_arns
    content {
      alarm_arn      = monitor.value
      alarm_role_arn = aws_iam_role.monitor[0].arn
    }
  }
  tags       = var.tags
  depends_on = [aws_iam_role_policy.monitor] # AppConfig checks the role when a deployment starts
}

resource "aws_appconfig_deployment" "flags" {
  count                    = local.create ? 1 : 0
  application_id           = aws_appconfig_application.this.id
  environment_id           = aws_appconfig_environment.this[0].environment_id
  configuration_profile_id = aws_appconfig_configuration_profile.flags.configuration_profile_id
  configuration_version    = tostring(aws_appconfig_hosted_configuration_version.flags.version_number)
  deployment_strategy_id   = aws_appconfig_deployment_strategy.rollout[0].id
  description              = "config/flags.json as of this apply"
  kms_key_identifier       = var.kms_key_arn
  tags                     = var.tags
}
