variable "name_prefix" {
  description = "Prefix of the topic and the dashboard (e.g. mangaassist-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "alarm_subscribers" {
  description = "Who the alarm topic notifies: SNS subscriptions (email and sms need confirming by the recipient)."
  type = list(object({
    protocol = string
    endpoint = string
  }))
  default = []
  validation {
    condition     = alltrue([for s in var.alarm_subscribers : contains(["email", "email-json", "sms", "https", "lambda", "sqs", "firehose"], s.protocol)])
    error_message = "alarm_subscribers: protocol is one of email, email-json, sms, https, lambda, sqs, firehose."
  }
}

variable "extra_alarm_actions" {
  description = "Other SNS topic ARNs every alarm here also notifies."
  type        = list(string)
  default     = []
}

variable "function_names" {
  description = "Function name by logical name: each gets an errors and a throttles alarm."
  type        = map(string)
}

variable "rule_names" {
  description = "Rule name by rule key: each gets a FailedInvocations alarm."
  type        = map(string)
}

variable "bus_name" {
  description = "The event bus the rules sit on (the EventBusName dimension)."
  type        = string
}

variable "table_names" {
  description = "DynamoDB table name by logical name: each gets a throttles alarm."
  type        = map(string)
}

variable "queue_names" {
  description = "Target queue name by logical name: each gets an oldest-message alarm."
  type        = map(string)
}

variable "dlq_names" {
  description = "Every DLQ's name, by any key: shown on the dashboard (their alarms live with the queues)."
  type        = map(string)
}

variable "api" {
  description = "The REST API's name and stage (the ApiName and Stage dimensions)."
  type = object({
    name  = string
    stage = string
  })
}

variable "metrics_namespace" {
  description = "Namespace of the functions' own metrics (Powertools Metrics)."
  type        = string
  default     = "MangaAssist"
}

variable "thresholds" {
  description = "Alarm thresholds: Lambda errors per 5 minutes per function, the API's 5XX rate (0-1) and p99 latency, a queue's oldest message age, the share of model calls a fallback model answered (0-1)."
  type = object({
    lambda_errors_per_5_minutes  = optional(number, 0)
    api_5xx_rate                 = optional(number, 0.01)
    api_p99_latency_ms           = optional(number, 3000)
    queue_oldest_message_seconds = optional(number, 900)
    model_fallback_rate          = optional(number, 0.1)
  })
  default = {}
  validation {
    condition     = var.thresholds.lambda_errors_per_5_minutes >= 0 && var.thresholds.api_5xx_rate > 0 && var.thresholds.api_5xx_rate < 1 && var.thresholds.api_p99_latency_ms > 0 && var.thresholds.queue_oldest_message_seconds > 0 && var.thresholds.model_fallback_rate > 0 && var.thresholds.model_fallback_rate < 1
    error_message = "thresholds: lambda_errors_per_5_minutes >= 0, 0 < api_5xx_rate < 1, api_p99_latency_ms and queue_oldest_message_seconds above 0, 0 < model_fallback_rate < 1."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the alarm topic (its key policy must let cloudwatch.amazonaws.com use it); null leaves the topic unencrypted, since CloudWatch cannot publish with the AWS-managed SNS key."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
