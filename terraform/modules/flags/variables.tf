variable "name_prefix" {
  description = "Prefix of the application, the strategy and the monitor role (e.g. mangaassist-prod); the application is named exactly this."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "The AppConfig environment the functions read (APPCONFIG_ENVIRONMENT): the deployment's environment name (dev, prod...)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,64}$", var.environment))
    error_message = "environment is 1-64 letters, digits, _, . or - (AppConfig's rule)."
  }
}

variable "profile_name" {
  description = "The configuration profile the functions read (APPCONFIG_PROFILE)."
  type        = string
  default     = "feature-flags"
}

variable "flags_content" {
  description = "The flags document (config/flags.json): Powertools' feature-flags schema, JSON."
  type        = string
  validation {
    condition     = can(keys(jsondecode(var.flags_content)))
    error_message = "flags_content must be a JSON object (Powertools' feature-flags schema)."
  }
}

variable "rollout" {
  description = "The deployment strategy: growth type and factor (EXPONENTIAL 12.5: 12.5% -> 25% -> 50% -> 100%, the closest AppConfig gets to 10% -> 50% -> 100%), total duration, and the final bake time during which the alarms can still roll it back."
  type = object({
    growth_type             = optional(string, "EXPONENTIAL")
    growth_factor           = optional(number, 12.5)
    duration_minutes        = optional(number, 20)
    final_bake_time_minutes = optional(number, 10)
  })
  default = {}
  validation {
    condition     = contains(["LINEAR", "EXPONENTIAL"], var.rollout.growth_type) && var.rollout.growth_factor >= 1 && var.rollout.growth_factor <= 100
    error_message = "rollout: growth_type is LINEAR or EXPONENTIAL, growth_factor 1-100 (percent)."
  }
  validation {
    condition     = var.rollout.duration_minutes >= 0 && var.rollout.duration_minutes <= 1440 && var.rollout.final_bake_time_minutes >= 0 && var.rollout.final_bake_time_minutes <= 1440
    error_message = "rollout: duration_minutes and final_bake_time_minutes are 0-1440 (AppConfig's range)."
  }
}

variable "alarm_arns" {
  description = "CloudWatch alarms that roll a deployment back when one goes into ALARM during it or its bake (AppConfig allows 5)."
  type        = list(string)
  default     = []
  validation {
    condition     = length(var.alarm_arns) <= 5
    error_message = "AppConfig monitors at most 5 alarms per environment."
  }
}

variable "create_environment_and_deployment" {
  description = "Create the environment (with its alarm monitors), the deployment strategy and the deployment. For emulators only: make deploy-test turns it off because moto has no AppConfig environments, strategies or deployments; on AWS the functions find no configuration without them (they run on the code's safe defaults)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the hosted configuration; null uses AppConfig's AWS-owned key."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
