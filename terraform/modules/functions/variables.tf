variable "name_prefix" {
  description = "Prefix of every function, role and log group name (e.g. mangaassist-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "runtime" {
  description = "Lambda Python runtime; the layer's wheels are built for the same version."
  type        = string
  default     = "python3.12"
  validation {
    condition     = contains(["python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be python3.12 or python3.13."
  }
}

variable "architecture" {
  description = "Instruction set of every function; must match the architecture the layer was built for."
  type        = string
  default     = "x86_64"
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "layer" {
  description = "The shared layer zip built by scripts/build.py and its base64 sha256."
  type = object({
    filename         = string
    source_code_hash = string
  })
}

variable "functions" {
  description = "Functions keyed by logical name (the folder under functions/): zip, hash, sizing, environment and the IAM statements its role gets (least privilege: nothing else)."
  type = map(object({
    filename                = string
    source_code_hash        = string
    description             = optional(string, "")
    timeout                 = optional(number, 10)
    memory_size             = optional(number, 256)
    reserved_concurrency    = optional(number, -1)
    provisioned_concurrency = optional(number, 0)
    environment             = optional(map(string), {})
    policy_statements = optional(list(object({
      sid       = string
      actions   = list(string)
      resources = list(string)
    })), [])
  }))
  validation {
    condition     = alltrue([for f in values(var.functions) : f.timeout >= 1 && f.timeout <= 900])
    error_message = "Every timeout must be 1-900 seconds."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.memory_size >= 128 && f.memory_size <= 10240])
    error_message = "Every memory_size must be 128-10240 MB."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.reserved_concurrency == -1 || f.reserved_concurrency >= 0])
    error_message = "reserved_concurrency is -1 (unreserved) or 0 and more."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.provisioned_concurrency >= 0 && (f.reserved_concurrency == -1 || f.provisioned_concurrency <= f.reserved_concurrency)])
    error_message = "provisioned_concurrency is 0 (none) or more, and at most the function's reserved concurrency when it has one."
  }
  validation {
    condition     = alltrue([for k in keys(var.functions) : can(regex("^[a-z][a-z0-9_]*$", k))])
    error_message = "Function keys must be snake_case folder names."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing of every function: Active samples and records traces, PassThrough only forwards an upstream trace header."
  type        = string
  default     = "Active"
  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode is Active or PassThrough."
  }
}

variable "alias_name" {
  description = "The alias every trigger invokes."
  type        = string
  default     = "live"
  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_-]{0,127}$", var.alias_name)) && !can(regex("^[0-9]+$", var.alias_name))
    error_message = "alias_name is a Lambda alias name (letters, digits, - and _, not a version number)."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for every function's log group."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for environment variables and logs; null uses AWS-managed encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
