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

variable "ingress_reserved_concurrency" {
  description = "Concurrency reserved for webhook ingress, so a partner's burst cannot starve the workers (-1: unreserved)."
  type        = number
  default     = -1
  validation {
    condition     = var.ingress_reserved_concurrency == -1 || var.ingress_reserved_concurrency >= 1
    error_message = "ingress_reserved_concurrency is -1 (unreserved) or at least 1."
  }
}

variable "webhook_max_body_bytes" {
  description = "Largest webhook body accepted; larger ones get 413."
  type        = number
  default     = 1048576
  validation {
    condition     = var.webhook_max_body_bytes >= 1024 && var.webhook_max_body_bytes <= 6291456
    error_message = "webhook_max_body_bytes must be 1 KiB to 6 MiB (Lambda's payload limit)."
  }
}

variable "model_fast_id" {
  description = "Bedrock model (or inference profile) for the fast path."
  type        = string
  default     = "anthropic.claude-3-haiku-20240307-v1:0"
}

variable "model_fallback_id" {
  description = "Bedrock model (or inference profile) used when the fast one is throttled, unavailable or its circuit is open."
  type        = string
  default     = "anthropic.claude-3-5-sonnet-20240620-v1:0"
}

variable "embeddings_model_id" {
  description = "Bedrock embeddings model for the product index."
  type        = string
  default     = "amazon.titan-embed-text-v2:0"
}

variable "embeddings_dimension" {
  description = "Embedding size; Titan Text Embeddings v2 offers 256, 512 or 1024, and the index is created with it."
  type        = number
  default     = 256
  validation {
    condition     = contains([256, 512, 1024], var.embeddings_dimension)
    error_message = "embeddings_dimension must be 256, 512 or 1024."
  }
}

variable "search_standby_replicas" {
  description = "OpenSearch Serverless standby replicas: ENABLED for production, DISABLED to halve the cost of a test deployment."
  type        = string
  default     = "ENABLED"
}
