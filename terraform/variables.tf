variable "name_prefix" {
  description = "Prefix of every resource name, e.g. mangaassist-prod. One deployment per prefix and account."
  type        = string
  default     = "mangaassist"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "ap-northeast-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like ap-northeast-1."
  }
}

variable "manifest_path" {
  description = "build/manifest.json written by `make build`; null means ../build/manifest.json next to this module."
  type        = string
  default     = null
}

variable "lambda_runtime" {
  description = "Lambda runtime of every function (the layer is built for it: LAMBDA_PYTHON=3.12|3.13 make build)."
  type        = string
  default     = "python3.12"
  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.12 or python3.13."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of every function."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags on every resource (added to the provider's default tags)."
  type        = map(string)
  default     = {}
}

variable "alarm_topic_arns" {
  description = "SNS topics notified by the dead-letter-queue alarms."
  type        = list(string)
  default     = []
}
