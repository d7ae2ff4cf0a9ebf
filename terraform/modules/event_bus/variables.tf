variable "name_prefix" {
  description = "Prefix of the bus, archive, rules and queues (e.g. mangaassist-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "archive" {
  description = "The bus archive: its event pattern (null archives every event) and retention in days (0 keeps events forever)."
  type = object({
    event_pattern  = optional(string)
    retention_days = optional(number, 90)
  })
  default = {}
  validation {
    condition     = var.archive.retention_days >= 0
    error_message = "retention_days must be 0 (forever) or more."
  }
  validation {
    condition     = var.archive.event_pattern == null || can(jsondecode(var.archive.event_pattern))
    error_message = "archive.event_pattern must be JSON."
  }
}

variable "queues" {
  description = "SQS queues keyed by logical name, each drained by a function: rule targets (analytics, notifications) or fed by functions (jobs, streams). Each gets its own redrive DLQ after max_receive_count receives."
  type = map(object({
    visibility_timeout_seconds = optional(number, 60)
    max_receive_count          = optional(number, 5)
  }))
  default = {}
}

variable "rules" {
  description = "Rules keyed by name: event pattern (JSON text) and targets keyed by target id. A target is a Lambda function (arn, function_name, the qualifier the arn names, and the role_name its failure records are sent with) or a queue from var.queues; every target gets a retry policy and its own DLQ."
  type = map(object({
    description   = optional(string, "")
    event_pattern = string
    targets = map(object({
      type          = string
      arn           = optional(string)
      function_name = optional(string)
      qualifier     = optional(string)
      role_name     = optional(string)
      queue         = optional(string)
      retry_policy = optional(object({
        maximum_retry_attempts       = optional(number, 185)
        maximum_event_age_in_seconds = optional(number, 86400)
      }), {})
      input_transformer = optional(object({
        input_paths    = optional(map(string), {})
        input_template = string
      }))
    }))
  }))
  validation {
    condition     = alltrue([for r in values(var.rules) : can(jsondecode(r.event_pattern))])
    error_message = "Every event_pattern must be JSON."
  }
  validation {
    condition     = alltrue(flatten([for r in values(var.rules) : [for t in values(r.targets) : contains(["lambda", "sqs"], t.type)]]))
    error_message = "A target's type is lambda or sqs."
  }
  validation {
    condition = alltrue(flatten([for r in values(var.rules) : [for t in values(r.targets) :
      t.retry_policy.maximum_retry_attempts >= 0 && t.retry_policy.maximum_retry_attempts <= 185 &&
    t.retry_policy.maximum_event_age_in_seconds >= 60 && t.retry_policy.maximum_event_age_in_seconds <= 86400]]))
    error_message = "Retry policies allow 0-185 attempts and an event age of 60-86400 seconds."
  }
  validation {
    condition     = alltrue(flatten([for r in values(var.rules) : [for t in values(r.targets) : t.type != "lambda" || (t.arn != null && t.function_name != null && t.role_name != null)]]))
    error_message = "A lambda target needs its arn, function_name and role_name."
  }
  validation {
    condition     = alltrue([for k in keys(var.rules) : !startswith(k, "forward-")])
    error_message = "Rule names starting with forward- are kept for var.forwarding."
  }
  validation {
    condition     = alltrue([for r in values(var.rules) : length(r.targets) >= 1 && length(r.targets) <= 5])
    error_message = "EventBridge allows 1-5 targets per rule."
  }
}

variable "forwarding" {
  description = "Rules whose target is another account's event bus (cross-account forwarding), keyed by name: rule <prefix>-forward-<key>, a DLQ like every target, and one IAM role EventBridge assumes to put events on the target buses. The target bus's resource policy must allow this account."
  type = map(object({
    description    = optional(string)
    event_pattern  = string
    target_bus_arn = string
    retry_policy = optional(object({
      maximum_retry_attempts       = optional(number, 185)
      maximum_event_age_in_seconds = optional(number, 86400)
    }), {})
  }))
  default = {}
  validation {
    condition     = alltrue([for f in values(var.forwarding) : can(regex("^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]+$", f.target_bus_arn))])
    error_message = "forwarding: every target_bus_arn is an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)."
  }
  validation {
    condition     = alltrue([for f in values(var.forwarding) : can(jsondecode(f.event_pattern))])
    error_message = "forwarding: every event_pattern must be JSON."
  }
  validation {
    condition     = alltrue([for k in keys(var.forwarding) : can(regex("^[a-z0-9][a-z0-9-]*$", k))])
    error_message = "forwarding: keys are lowercase letters, digits and dashes (they name the rule and its DLQ)."
  }
  validation {
    condition = alltrue([for f in values(var.forwarding) :
      f.retry_policy.maximum_retry_attempts >= 0 && f.retry_policy.maximum_retry_attempts <= 185 &&
    f.retry_policy.maximum_event_age_in_seconds >= 60 && f.retry_policy.maximum_event_age_in_seconds <= 86400])
    error_message = "forwarding: retry policies allow 0-185 attempts and an event age of 60-86400 seconds."
  }
}

variable "create_schema_registry" {
  description = "Register var.schemas in an EventBridge schema registry. Exists to switch the registry off against an emulator without the schemas API (make deploy-test on moto); keep it on for AWS."
  type        = bool
  default     = true
}

variable "schemas" {
  description = "JSON Schema (draft-04) documents to register, keyed by schema name, value the file's content."
  type        = map(string)
  default     = {}
}

variable "dlq_alarm_actions" {
  description = "SNS topic ARNs notified when any dead-letter queue holds messages."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the queues; null uses SQS-managed encryption (SSE-SQS)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
