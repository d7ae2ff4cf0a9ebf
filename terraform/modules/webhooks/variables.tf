variable "name_prefix" {
  description = "Prefix of the secrets' names (e.g. mangaassist-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "sources" {
  description = "Webhook sources from wiring.json, keyed by name; each gets its own Secrets Manager secret."
  type        = map(object({ scheme = string }))
  validation {
    condition     = alltrue([for s in values(var.sources) : contains(["stripe", "github", "standard-webhooks"], s.scheme)])
    error_message = "A source's scheme is stripe, github or standard-webhooks."
  }
  validation {
    condition     = alltrue([for k in keys(var.sources) : can(regex("^[a-z0-9_-]{1,64}$", k))])
    error_message = "Source names are 1-64 of [a-z0-9_-]: they are URL path segments."
  }
}

variable "function_name" {
  description = "Name of the webhook ingress function the URL invokes."
  type        = string
}

variable "qualifier" {
  description = "The alias (or version) of the ingress function the URL invokes; null for the unqualified function."
  type        = string
  default     = null
}

variable "log_group_name" {
  description = "The ingress function's log group, watched for accepted deliveries whose claim was not completed."
  type        = string
  validation {
    condition     = startswith(var.log_group_name, "/aws/lambda/")
    error_message = "log_group_name is a Lambda function's log group (/aws/lambda/...)."
  }
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when an accepted delivery's claim was not completed."
  type        = list(string)
  default     = []
}

variable "cors_allow_origins" {
  description = "Origins allowed by CORS on the function URL; partners call server to server, so none by default."
  type        = list(string)
  default     = []
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored (0 deletes at once, for throwaway environments)."
  type        = number
  default     = 7
  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "Secrets Manager accepts 0 or 7-30 days."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the secrets; null uses the AWS-managed key."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
