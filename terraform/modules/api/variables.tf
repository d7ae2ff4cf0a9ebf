variable "name_prefix" {
  description = "Prefix of the API, its key and usage plan (e.g. mangaassist-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "routes" {
  description = "REST routes from wiring.json, keyed \"METHOD /path\", each served by a function (Lambda proxy integration), optionally with a throttle of its own for every client together."
  type = map(object({
    function         = string
    api_key_required = optional(bool, true)
    throttle = optional(object({
      rate_limit  = number
      burst_limit = number
    }))
  }))
  validation {
    condition     = alltrue([for k in keys(var.routes) : can(regex("^(GET|POST|PUT|PATCH|DELETE|ANY) /[A-Za-z0-9_./{}+-]*$", k))])
    error_message = "Route keys look like \"GET /v1/search\"."
  }
  validation {
    condition     = alltrue([for r in values(var.routes) : r.throttle == null ? true : r.throttle.rate_limit > 0 && r.throttle.burst_limit > 0])
    error_message = "A route's throttle needs rate_limit and burst_limit above 0."
  }
}

variable "invoke_arns" {
  description = "Invoke ARN of each function a route names (its alias), keyed by function."
  type        = map(string)
}

variable "function_names" {
  description = "Deployed name of each function a route names, keyed by function (for the invoke permissions)."
  type        = map(string)
}

variable "qualifier" {
  description = "The alias the invoke ARNs name (the permissions' qualifier); null for unqualified functions."
  type        = string
  default     = null
}

variable "stage_name" {
  description = "The stage clients call."
  type        = string
  default     = "live"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "stage_name is 1-128 letters, digits, - or _."
  }
}

variable "environment" {
  description = "Environment name (dev, prod...), set as the stage variable `environment` that functions read from the proxy event."
  type        = string
  default     = "dev"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.environment))
    error_message = "environment is 1-64 letters, digits, - or _ (a stage variable value)."
  }
}

variable "stage_throttle" {
  description = "Every method's steady requests per second and burst, all clients together (method settings */*)."
  type = object({
    rate_limit  = optional(number, 1000)
    burst_limit = optional(number, 2000)
  })
  default = {}
  validation {
    condition     = var.stage_throttle.rate_limit > 0 && var.stage_throttle.burst_limit > 0
    error_message = "stage_throttle: rate_limit and burst_limit must be above 0 (0 would refuse every request)."
  }
}

variable "throttle" {
  description = "Usage plan limits per API key: steady requests per second, burst, and requests per day."
  type = object({
    rate_limit  = optional(number, 100)
    burst_limit = optional(number, 200)
    daily_quota = optional(number, 10000)
  })
  default = {}
  validation {
    condition     = var.throttle.rate_limit > 0 && var.throttle.burst_limit > 0 && var.throttle.daily_quota > 0
    error_message = "throttle: rate_limit, burst_limit and daily_quota must be above 0 (0 would refuse every request)."
  }
}

variable "execution_logging_level" {
  description = "API Gateway execution logging: INFO (every request's steps), ERROR (failures only) or OFF."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["OFF", "ERROR", "INFO"], var.execution_logging_level)
    error_message = "execution_logging_level is OFF, ERROR or INFO."
  }
}

variable "manage_account_cloudwatch_role" {
  description = "Create the role API Gateway writes execution logs with and set it on the account (one per account and region: turn off when another deployment in the account already manages it)."
  type        = bool
  default     = true
}

variable "xray_tracing" {
  description = "X-Ray tracing on the stage."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the access log group (and the WAF log group)."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "waf" {
  description = "An optional WAF web ACL on the stage: a rate-based rule (requests per 5 minutes per client IP, then blocked), AWSManagedRulesKnownBadInputsRuleSet always, and the AWS managed rule groups listed here by name."
  type = object({
    enabled                  = optional(bool, true)
    rate_limit_per_5_minutes = optional(number, 2000)
    managed_rule_groups      = optional(list(string), ["AWSManagedRulesCommonRuleSet"])
  })
  default = {}
  validation {
    condition     = var.waf.rate_limit_per_5_minutes >= 10 && var.waf.rate_limit_per_5_minutes <= 2000000000
    error_message = "waf.rate_limit_per_5_minutes must be 10 to 2,000,000,000 (WAF's range)."
  }
  validation {
    condition = alltrue([for g in var.waf.managed_rule_groups : contains([
      "AWSManagedRulesCommonRuleSet", "AWSManagedRulesAmazonIpReputationList",
      "AWSManagedRulesAnonymousIpList", "AWSManagedRulesSQLiRuleSet", "AWSManagedRulesLinuxRuleSet",
      "AWSManagedRulesUnixRuleSet", "AWSManagedRulesAdminProtectionRuleSet", "AWSManagedRulesBotControlRuleSet",
    ], g)])
    error_message = "waf.managed_rule_groups names an unknown rule group; known: AWSManagedRulesCommonRuleSet, AWSManagedRulesAmazonIpReputationList, AWSManagedRulesAnonymousIpList, AWSManagedRulesSQLiRuleSet, AWSManagedRulesLinuxRuleSet, AWSManagedRulesUnixRuleSet, AWSManagedRulesAdminProtectionRuleSet, AWSManagedRulesBotControlRuleSet."
  }
  validation {
    condition     = length(distinct(var.waf.managed_rule_groups)) == length(var.waf.managed_rule_groups)
    error_message = "waf.managed_rule_groups lists a rule group twice."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the log groups; null uses CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
