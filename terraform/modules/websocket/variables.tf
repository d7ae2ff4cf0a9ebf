variable "name_prefix" {
  description = "Prefix of the API, its authorizer, usage plan and log group (e.g. mangaassist-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "routes" {
  description = "Route keys (wiring.json's websocket.routes): API Gateway's $connect, $disconnect, $default, and the route selection's values (sendMessage)."
  type        = list(string)
  validation {
    condition     = contains(var.routes, "$connect") && alltrue([for r in var.routes : can(regex("^(\\$connect|\\$disconnect|\\$default|[A-Za-z0-9_-]{1,128})$", r))])
    error_message = "routes include $connect (where the authorizer runs) and are $connect, $disconnect, $default or plain action names."
  }
}

variable "route_selection_expression" {
  description = "How API Gateway picks a message's route, e.g. $request.body.action."
  type        = string
  default     = "$request.body.action"
}

variable "invoke_arn" {
  description = "Invoke ARN of the function every route calls (its alias)."
  type        = string
}

variable "function_name" {
  description = "Deployed name of that function (for its invoke permission)."
  type        = string
}

variable "authorizer_invoke_arn" {
  description = "Invoke ARN of the Lambda REQUEST authorizer on $connect (its alias)."
  type        = string
}

variable "authorizer_function_name" {
  description = "Deployed name of the authorizer function (for its invoke permission)."
  type        = string
}

variable "qualifier" {
  description = "The alias the invoke ARNs name (the permissions' qualifier); null for unqualified functions."
  type        = string
  default     = null
}

variable "api_key_required" {
  description = "Whether $connect needs an API key (the one the authorizer returns as usageIdentifierKey)."
  type        = bool
  default     = true
}

variable "api_key_ids" {
  description = "API keys (by any label) admitted to the stage through its usage plan."
  type        = map(string)
  default     = {}
}

variable "stage_name" {
  description = "The stage clients connect to (and functions post frames to)."
  type        = string
  default     = "live"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "stage_name is 1-128 letters, digits, - or _."
  }
}

variable "throttle" {
  description = "Messages per second and burst: every route's default on the stage, and each key's in the usage plan."
  type = object({
    rate_limit  = number
    burst_limit = number
  })
  validation {
    condition     = var.throttle.rate_limit > 0 && var.throttle.burst_limit > 0
    error_message = "throttle: rate_limit and burst_limit must be above 0 (0 would refuse every message)."
  }
}

variable "daily_quota" {
  description = "Messages per API key per day on this stage; null: no quota."
  type        = number
  default     = null
}

variable "execution_logging_level" {
  description = "API Gateway execution logging of the routes: INFO, ERROR or OFF."
  type        = string
  default     = "ERROR"
  validation {
    condition     = contains(["OFF", "ERROR", "INFO"], var.execution_logging_level)
    error_message = "execution_logging_level is OFF, ERROR or INFO."
  }
}

variable "create_deployment" {
  description = "Create the API deployment the stage serves. For emulators only: make deploy-test turns it off because moto has no API Gateway v2 deployments; on AWS a stage without one serves nothing."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the access log group."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the access log group; null uses CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
