variable "name_prefix" {
  description = "Prefix of the collection (<prefix>-products) and its policies (<prefix>-enc, -net, -data), each at most 32 characters: the caller checks the lengths (the root module's name_prefix validation)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "writer_role_arns" {
  description = "Roles that create indexes and write documents (the catalog indexer)."
  type        = list(string)
}

variable "reader_role_arns" {
  description = "Roles that only query (the search function)."
  type        = list(string)
}

variable "allow_public_network" {
  description = "Reach the collection endpoint from outside a VPC (Lambda functions without VPC config need this; access is still limited to the roles above by the data access policy)."
  type        = bool
  default     = true
}

variable "create_data_access_policy" {
  description = "Create the data access policy that lets the writer and reader roles in. Exists to switch it off against an emulator that lacks the API (make deploy-test on moto); without it on AWS the functions cannot reach the collection."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the collection; null uses an AWS-owned key."
  type        = string
  default     = null
}

variable "standby_replicas" {
  description = "ENABLED for production (redundant OCUs), DISABLED to halve the minimum cost in development."
  type        = string
  default     = "ENABLED"
  validation {
    condition     = contains(["ENABLED", "DISABLED"], var.standby_replicas)
    error_message = "standby_replicas is ENABLED or DISABLED."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
