variable "name_prefix" {
  description = "Prefix of every table and bucket name (e.g. mangaassist-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tables" {
  description = "DynamoDB tables keyed by logical name: hash key (and optional range key, both strings), the TTL attribute, if any, and global secondary indexes keyed by index name (hash key, optional range key; projection ALL, on-demand like the table)."
  type = map(object({
    hash_key      = string
    range_key     = optional(string)
    ttl_attribute = optional(string)
    global_secondary_indexes = optional(map(object({
      hash_key  = string
      range_key = optional(string)
    })), {})
  }))
  validation {
    condition     = alltrue([for t in values(var.tables) : length(t.global_secondary_indexes) <= 20])
    error_message = "DynamoDB allows at most 20 global secondary indexes per table."
  }
  validation {
    condition     = alltrue(flatten([for t in values(var.tables) : [for k in keys(t.global_secondary_indexes) : can(regex("^[A-Za-z0-9_.-]{3,255}$", k))]]))
    error_message = "Index names are 3-255 letters, digits, _, - or . (DynamoDB's rule)."
  }
}

variable "buckets" {
  description = "S3 buckets keyed by logical name, each with the days after which objects expire (0: never) and move to infrequent access (0: never)."
  type = map(object({
    expire_days = optional(number, 0)
    ia_days     = optional(number, 30)
  }))
  validation {
    condition     = alltrue([for b in values(var.buckets) : b.ia_days == 0 || b.ia_days >= 30])
    error_message = "S3 allows a transition to STANDARD_IA after 30 days at the earliest."
  }
}

variable "point_in_time_recovery" {
  description = "Point-in-time recovery on every table."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for tables and buckets; null uses AWS-managed keys (DynamoDB) and SSE-S3."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let terraform destroy non-empty buckets (for throwaway environments only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
