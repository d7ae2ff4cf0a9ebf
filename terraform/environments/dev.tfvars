# A development deployment: cheap, throwaway, every alarm and log still on.
# terraform -chdir=terraform apply -var-file=environments/dev.tfvars
environment = "dev"
name_prefix = "mangaassist-dev"

log_retention_days          = 14
force_destroy               = true # destroy removes non-empty buckets and tables
point_in_time_recovery      = false
secret_recovery_window_days = 0 # the prefix can be re-created at once
search_standby_replicas     = "DISABLED"

ingress_provisioned_concurrency   = 0
model_worker_reserved_concurrency = -1 # new accounts have too little concurrency to reserve any

api_execution_logging_level = "INFO"
api_key_throttle            = { rate_limit = 20, burst_limit = 40, daily_quota = 10000 }
waf                         = { enabled = false }

alarm_thresholds = { api_p99_latency_ms = 5000 }
flags_rollout    = { duration_minutes = 0, final_bake_time_minutes = 0 } # a flags push reaches dev at once
