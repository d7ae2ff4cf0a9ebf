variable "name_prefix" {
  description = "Prefix of every resource name, e.g. mangaassist-prod. One deployment per prefix and account. Names are never cut or hashed (scripts/mangaassist_dev/naming.py), so its longest allowed length is what the longest name derived from wiring.json leaves within its service's limit (output name_prefix_max_length)."
  type        = string
  default     = "mangaassist"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be lowercase letters, digits or dashes, start with a letter and end with a letter or digit."
  }
  validation {
    condition     = alltrue([for b in values(local.name_budget) : length(var.name_prefix) + b.suffix <= b.limit])
    error_message = "name_prefix \"${var.name_prefix}\" (${length(var.name_prefix)} characters) is too long: ${join("; ", [for k, b in local.name_budget : "${k} allow at most ${b.limit - b.suffix} (longest: <prefix>${b.longest})" if length(var.name_prefix) + b.suffix > b.limit])}."
  }
}

variable "environment" {
  description = "Environment name (dev, staging, prod): a default tag on every resource and the REST stage's `environment` stage variable."
  type        = string
  default     = "dev"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.environment))
    error_message = "environment must be 1-32 lowercase letters, digits or dashes, starting with a letter."
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
  description = "CloudWatch Logs retention of every function's, the API's access and the WAF's log group."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 365, ... 3653)."
  }
}

variable "tags" {
  description = "Tags on every resource (added to the provider's default tags)."
  type        = map(string)
  default     = {}
}

variable "alarm_topic_arns" {
  description = "Other SNS topics every alarm notifies, besides the alarm topic this module creates."
  type        = list(string)
  default     = []
}

variable "alarm_subscribers" {
  description = "Subscriptions to the alarm topic this module creates, e.g. [{ protocol = \"email\", endpoint = \"oncall@example.com\" }]."
  type = list(object({
    protocol = string
    endpoint = string
  }))
  default = []
}

variable "alarm_thresholds" {
  description = "Alarm thresholds (modules/observability): lambda_errors_per_5_minutes, api_5xx_rate (0-1), api_p99_latency_ms, queue_oldest_message_seconds, model_fallback_rate (0-1: the share of model calls a fallback answered; a feature-flag deployment rolls back on it and on api_5xx_rate)."
  type = object({
    lambda_errors_per_5_minutes  = optional(number, 0)
    api_5xx_rate                 = optional(number, 0.01)
    api_p99_latency_ms           = optional(number, 3000)
    queue_oldest_message_seconds = optional(number, 900)
    model_fallback_rate          = optional(number, 0.1)
  })
  default = {}
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

variable "ingress_provisioned_concurrency" {
  description = "Provisioned concurrency on the webhook ingress's alias (0: none): partners get answers without cold starts. At most ingress_reserved_concurrency when that is set."
  type        = number
  default     = 0
  validation {
    condition     = var.ingress_provisioned_concurrency >= 0
    error_message = "ingress_provisioned_concurrency is 0 (none) or more."
  }
}

variable "model_worker_reserved_concurrency" {
  description = "Concurrency reserved for (and capping) each bus worker that calls Bedrock, so a burst of events cannot exceed the model quota or starve the other functions (-1: unreserved). Which functions: reserved_concurrency_variable in wiring.json."
  type        = number
  default     = -1
  validation {
    condition     = var.model_worker_reserved_concurrency == -1 || var.model_worker_reserved_concurrency >= 1
    error_message = "model_worker_reserved_concurrency is -1 (unreserved) or at least 1."
  }
}

variable "lambda_tracing_mode" {
  description = "X-Ray tracing of every function: Active or PassThrough."
  type        = string
  default     = "Active"
  validation {
    condition     = contains(["Active", "PassThrough"], var.lambda_tracing_mode)
    error_message = "lambda_tracing_mode is Active or PassThrough."
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
  validation {
    condition     = contains(["ENABLED", "DISABLED"], var.search_standby_replicas)
    error_message = "search_standby_replicas is ENABLED or DISABLED."
  }
}

variable "search_allow_public_network" {
  description = "Reach the collection endpoint from outside a VPC (the functions run without VPC config, so they need it; the data access policy still admits only their roles)."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let `terraform destroy` remove non-empty buckets and tables (it turns DynamoDB deletion protection off): for throwaway environments only."
  type        = bool
  default     = false
}

variable "point_in_time_recovery" {
  description = "Point-in-time recovery on every table."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for tables, buckets, queues, secrets, log groups, function environments and the collection; null uses AWS-managed or AWS-owned keys."
  type        = string
  default     = null
  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn is null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "secret_recovery_window_days" {
  description = "Days a deleted webhook secret can be restored; 0 deletes at once, so a throwaway prefix can be re-created the same week."
  type        = number
  default     = 7
  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days is 0 or 7-30 (Secrets Manager's range)."
  }
}

variable "webhook_cors_allow_origins" {
  description = "Origins allowed by CORS on the webhook function URL; partners call server to server, so none by default."
  type        = list(string)
  default     = []
}

variable "api_stage_name" {
  description = "The REST API stage clients call."
  type        = string
  default     = "live"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.api_stage_name))
    error_message = "api_stage_name is 1-128 letters, digits, - or _."
  }
}

variable "api_stage_throttle" {
  description = "Every API method's steady requests per second and burst, all clients together."
  type = object({
    rate_limit  = optional(number, 1000)
    burst_limit = optional(number, 2000)
  })
  default = {}
  validation {
    condition     = var.api_stage_throttle.rate_limit > 0 && var.api_stage_throttle.burst_limit > 0
    error_message = "api_stage_throttle: rate_limit and burst_limit must be above 0 (0 would refuse every request)."
  }
}

variable "api_key_throttle" {
  description = "The usage plan's limits per API key: steady requests per second, burst, and requests per day."
  type = object({
    rate_limit  = optional(number, 100)
    burst_limit = optional(number, 200)
    daily_quota = optional(number, 10000)
  })
  default = {}
  validation {
    condition     = var.api_key_throttle.rate_limit > 0 && var.api_key_throttle.burst_limit > 0 && var.api_key_throttle.daily_quota > 0
    error_message = "api_key_throttle: rate_limit, burst_limit and daily_quota must be above 0 (0 would refuse every request)."
  }
}

variable "api_execution_logging_level" {
  description = "API Gateway execution logging: INFO (every request's steps), ERROR (failures only) or OFF."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["OFF", "ERROR", "INFO"], var.api_execution_logging_level)
    error_message = "api_execution_logging_level is OFF, ERROR or INFO."
  }
}

variable "manage_api_gateway_account_role" {
  description = "Create the role API Gateway writes execution logs with and set it on the account. One per account and region: turn it off in the second deployment of an account."
  type        = bool
  default     = true
}

variable "api_xray_tracing" {
  description = "X-Ray tracing on the REST stage."
  type        = bool
  default     = true
}

variable "waf" {
  description = "The WAF web ACL on the REST stage: enabled, requests per 5 minutes per client IP before it is blocked, AWSManagedRulesKnownBadInputsRuleSet always, and the AWS managed rule groups listed here by name (default: AWSManagedRulesCommonRuleSet)."
  type = object({
    enabled                  = optional(bool, true)
    rate_limit_per_5_minutes = optional(number, 2000)
    managed_rule_groups      = optional(list(string), ["AWSManagedRulesCommonRuleSet"])
  })
  default = {}
  validation {
    condition = alltrue([for g in var.waf.managed_rule_groups : contains([
      "AWSManagedRulesCommonRuleSet", "AWSManagedRulesAmazonIpReputationList",
      "AWSManagedRulesAnonymousIpList", "AWSManagedRulesSQLiRuleSet", "AWSManagedRulesLinuxRuleSet",
      "AWSManagedRulesUnixRuleSet", "AWSManagedRulesAdminProtectionRuleSet", "AWSManagedRulesBotControlRuleSet",
    ], g)])
    error_message = "waf.managed_rule_groups names an unknown AWS managed rule group (known: AWSManagedRulesCommonRuleSet, AWSManagedRulesAmazonIpReputationList, AWSManagedRulesAnonymousIpList, AWSManagedRulesSQLiRuleSet, AWSManagedRulesLinuxRuleSet, AWSManagedRulesUnixRuleSet, AWSManagedRulesAdminProtectionRuleSet, AWSManagedRulesBotControlRuleSet)."
  }
  validation {
    condition     = var.waf.rate_limit_per_5_minutes >= 10 && var.waf.rate_limit_per_5_minutes <= 2000000000
    error_message = "waf.rate_limit_per_5_minutes must be 10 to 2,000,000,000 (WAF's range)."
  }
}

variable "forwarding" {
  description = "Cross-account forwarding: rules (keyed by name) whose target is another account's event bus, each with an event pattern (JSON) and the bus ARN. Empty: none, and no role."
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
}

variable "enable_schema_registry" {
  description = "Register schemas/ in the EventBridge schema registry. For emulators only: make deploy-test turns it off because moto lacks the schemas API; keep it on for AWS."
  type        = bool
  default     = true
}

variable "enable_search_data_access_policy" {
  description = "Create the OpenSearch Serverless data access policy. For emulators only: make deploy-test turns it off because moto cannot create access policies; on AWS the functions cannot reach the collection without it."
  type        = bool
  default     = true
}

variable "enable_flags_deployment" {
  description = "Create the AppConfig environment (with its alarm monitors), the deployment strategy and the deployment of config/flags.json. For emulators only: make deploy-test turns it off because moto has no AppConfig environments, strategies or deployments; on AWS the functions find no flags without them and run on the code's defaults."
  type        = bool
  default     = true
}

variable "enable_websocket_deployment" {
  description = "Create the WebSocket API's deployment. For emulators only: make deploy-test turns it off because moto has no API Gateway v2 deployments; on AWS the stage serves nothing without one."
  type        = bool
  default     = true
}

variable "flags_max_age_seconds" {
  description = "How long a function trusts the feature flags it read (FLAGS_MAX_AGE_SECONDS): a change, a kill switch included, reaches every container within this."
  type        = number
  default     = 30
  validation {
    condition     = var.flags_max_age_seconds >= 15 && var.flags_max_age_seconds <= 3600
    error_message = "flags_max_age_seconds is 15-3600 (AppConfig's minimum poll interval is 15 s)."
  }
}

variable "flags_rollout" {
  description = "How a flags deployment rolls out (modules/flags): EXPONENTIAL growth from 12.5% (12.5 -> 25 -> 50 -> 100%, the closest AppConfig gets to 10 -> 50 -> 100%) over duration_minutes, then final_bake_time_minutes during which the API 5XX and model-errors alarms can still roll it back."
  type = object({
    growth_type             = optional(string, "EXPONENTIAL")
    growth_factor           = optional(number, 12.5)
    duration_minutes        = optional(number, 20)
    final_bake_time_minutes = optional(number, 10)
  })
  default = {}
  validation {
    condition     = contains(["LINEAR", "EXPONENTIAL"], var.flags_rollout.growth_type) && var.flags_rollout.growth_factor >= 1 && var.flags_rollout.growth_factor <= 100
    error_message = "flags_rollout: growth_type is LINEAR or EXPONENTIAL, growth_factor 1-100 (percent)."
  }
  validation {
    condition     = var.flags_rollout.duration_minutes >= 0 && var.flags_rollout.duration_minutes <= 1440 && var.flags_rollout.final_bake_time_minutes >= 0 && var.flags_rollout.final_bake_time_minutes <= 1440
    error_message = "flags_rollout: duration_minutes and final_bake_time_minutes are 0-1440 (AppConfig's range)."
  }
}

variable "model_candidate_id" {
  description = "The model a rollout flag's `candidate` names (MODEL_CANDIDATE_ID); null: none, and a rollout to it stays on the flag's other models."
  type        = string
  default     = null
}

variable "jwt_authorizer" {
  description = "Whose end-user tokens the authorizer accepts (JWT_ISSUER, JWT_AUDIENCE, JWT_JWKS_URL), e.g. a Cognito user pool's issuer URL, app client id and JWKS URL. Null: none are set, the authorizer refuses any token and lets anonymous requests through (the free tier)."
  type = object({
    issuer   = string
    audience = string
    jwks_url = string
  })
  default = null
  validation {
    condition     = var.jwt_authorizer == null || (startswith(try(var.jwt_authorizer.jwks_url, ""), "https://") && length(try(var.jwt_authorizer.issuer, "")) > 0 && length(try(var.jwt_authorizer.audience, "")) > 0)
    error_message = "jwt_authorizer: issuer and audience are set and jwks_url is an https:// URL."
  }
}

variable "jwt_required" {
  description = "Refuse requests and WebSocket handshakes without a valid end-user token (JWT_REQUIRED); false lets anonymous ones through as the free tier."
  type        = bool
  default     = false
  validation {
    condition     = !var.jwt_required || var.jwt_authorizer != null
    error_message = "jwt_required needs jwt_authorizer: without an issuer every request would be refused."
  }
}
