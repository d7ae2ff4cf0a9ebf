# Production: retained, protected, sized for 1M chat messages a day (docs/capacity-and-cost.md).
# terraform -chdir=terraform apply -var-file=environments/prod.tfvars
environment = "prod"
name_prefix = "mangaassist-prod"

log_retention_days          = 365
force_destroy               = false # tables keep deletion protection, buckets refuse a destroy
point_in_time_recovery      = true
secret_recovery_window_days = 30
search_standby_replicas     = "ENABLED"

ingress_provisioned_concurrency   = 5  # partners' webhooks answered without cold starts
ingress_reserved_concurrency      = 50 # a partner's burst cannot starve the workers
model_worker_reserved_concurrency = 20 # caps Bedrock callers below the model quota

api_execution_logging_level = "ERROR" # INFO logs every request's steps: costly at this volume
api_key_throttle            = { rate_limit = 100, burst_limit = 200, daily_quota = 10000 }
api_stage_throttle          = { rate_limit = 1000, burst_limit = 2000 }
waf                         = { enabled = true, rate_limit_per_5_minutes = 2000 }

alarm_thresholds = { api_p99_latency_ms = 3000, api_5xx_rate = 0.01, model_fallback_rate = 0.1 }
# Flags: 12.5% -> 25% -> 50% -> 100% over 20 minutes, then 10 more under the 5XX and model-errors alarms.
flags_rollout = { growth_type = "EXPONENTIAL", growth_factor = 12.5, duration_minutes = 20, final_bake_time_minutes = 10 }
# alarm_subscribers = [{ protocol = "email", endpoint = "oncall@example.com" }]
