variable "name_prefix" {
  description = "Prefix of the API, its key and usage plan (e.g. mangaassist-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "routes" {
  description = "REST routes from wiring.json, keyed \"METHOD /path\", each served by a function (Lambda proxy integration)."
  type = map(object({
    function         = string
    api_key_required = optional(bool, true)
  }))
  validation {
    condition     = alltrue([for k in keys(var.routes) : can(regex("^(GET|POST|PUT|PATCH|DELETE|ANY) /[A-Za-z0-9_./{}+-]*$", k))])
    error_message = "Route keys look like \"GET /v1/search\"."
  }
}

variable "invoke_arns" {
  description = "Invoke ARN of each function a route names, keyed by function."
  type        = map(string)
}

variable "function_names" {
  description = "Deployed name of each function a route names, keyed by function (for the invoke permissions)."
  type        = map(string)
}

variable "stage_name" {
  description = "The stage clients call."
  type        = string
  default     = "live"
}

variable "throttle" {
  description = "Usage plan limits for the API key: steady requests per second, burst, and requests per day."
  type = object({
    rate_limit  = optional(number, 50)
    burst_limit = optional(number, 100)
    daily_quota = optional(number, 100000)
  })
  default = {}
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
