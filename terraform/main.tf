# The platform. The wiring (functions and their permissions, tables, buckets, queues, rules,
# the archive) is data in wiring.json, read here and by the local stack; the zips and their
# hashes come from build/manifest.json (`make build`).
provider "aws" {
  region = var.region
  # A tag per environment lets Cost Explorer split the bill.
  default_tags {
    tags = merge({ project = "mangaassist", managed_by = "terraform", environment = var.environment }, var.tags)
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  manifest_path = coalesce(var.manifest_path, "${path.module}/../build/manifest.json")
  build_dir     = dirname(local.manifest_path)
  manifest      = jsondecode(file(local.manifest_path))
  build_version = try(local.manifest.build_version, "") # checked by output build_version
  # Checked by output build_version: every function wiring.json deploys has a zip in the build.
  functions_without_zip = sort([for name in keys(jsondecode(file("${path.module}/wiring.json")).functions) : name if !can(local.manifest.functions[name].path)])
  wiring                = jsondecode(file("${path.module}/wiring.json"))
  schema_dir            = "${path.module}/../schemas"
  partition             = data.aws_partition.current.partition
  account_id            = data.aws_caller_identity.current.account_id

  # Every permission a wiring entry may name -> the IAM statements it grants, on one resource each.
  # A table's :read covers its global secondary indexes (<table arn>/index/*, read actions only);
  # :readwrite adds the item writes and ConditionCheckItem (TransactWriteItems' condition checks).
  table_read_actions  = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"]
  table_write_actions = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"]
  table_permissions = merge([
    for t, arn in module.data.table_arns : {
      "${t}:read" = [{ sid = "Read${replace(title(t), "_", "")}", actions = local.table_read_actions, resources = compact([arn, module.data.index_arns[t]]) }]
      "${t}:readwrite" = concat(
        [{ sid = "ReadWrite${replace(title(t), "_", "")}", actions = concat(local.table_read_actions, local.table_write_actions), resources = [arn] }],
        module.data.index_arns[t] == null ? [] : [{ sid = "ReadWrite${replace(title(t), "_", "")}Indexes", actions = local.table_read_actions, resources = [module.data.index_arns[t]] }],
      )
    }
  ]...)
  bucket_permissions = merge([
    for b, arn in module.data.bucket_arns : {
      "${b}:write" = [{ sid = "Write${replace(title(b), "_", "")}", actions = ["s3:PutObject"], resources = ["${arn}/*"] }]
      "${b}:read"  = [{ sid = "Read${replace(title(b), "_", "")}", actions = ["s3:GetObject"], resources = ["${arn}/*"] }]
    }
  ]...)
  # Bedrock: a foundation model id, or a cross-region inference profile (us./eu./apac./jp./global.)
  # which also needs the underlying model in every region it routes to.
  model_resources = flatten([for id in compact(distinct([var.model_fast_id, var.model_fallback_id, var.model_candidate_id])) : (
    can(regex("^(us|eu|apac|jp|global|us-gov)\\.", id))
    ? ["arn:${local.partition}:bedrock:${var.region}:${local.account_id}:inference-profile/${id}", "arn:${local.partition}:bedrock:*::foundation-model/${replace(id, "/^[a-z-]+\\./", "")}"]
    : ["arn:${local.partition}:bedrock:${var.region}::foundation-model/${id}"]
  )])
  queue_permissions = merge([
    for q, arn in module.event_bus.queue_arns : {
      "queue:${q}:consume" = [{ sid = "Consume${title(q)}", actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"], resources = [arn] }]
      "queue:${q}:send"    = [{ sid = "SendTo${title(q)}", actions = ["sqs:SendMessage"], resources = [arn] }]
      "dlq:${q}:send"      = [{ sid = "SendTo${title(q)}DeadLetters", actions = ["sqs:SendMessage"], resources = [module.event_bus.queue_dlq_arns[q]] }]
    }
  ]...)
  permission_statements = merge(local.table_permissions, local.bucket_permissions, local.queue_permissions, {
    "models:invoke"        = [{ sid = "InvokeModels", actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"], resources = local.model_resources }]
    "embeddings:invoke"    = [{ sid = "InvokeEmbeddings", actions = ["bedrock:InvokeModel"], resources = ["arn:${local.partition}:bedrock:${var.region}::foundation-model/${var.embeddings_model_id}"] }]
    "search:read"          = [{ sid = "SearchRead", actions = ["aoss:APIAccessAll"], resources = [module.search.collection_arn] }]
    "search:write"         = [{ sid = "SearchWrite", actions = ["aoss:APIAccessAll"], resources = [module.search.collection_arn] }]
    "events:put"           = [{ sid = "PutEvents", actions = ["events:PutEvents"], resources = [module.event_bus.bus_arn] }]
    "webhook_secrets:read" = [{ sid = "ReadWebhookSecrets", actions = ["secretsmanager:GetSecretValue"], resources = values(module.webhooks.secret_arns) }]
    # Powertools' AppConfigStore: a session on the profile through this environment, then its latest.
    "flags:read" = [{ sid = "ReadFeatureFlags", actions = ["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"], resources = [module.flags.configuration_arn] }]
    # One secret per subscription, created by `ops.py subscriptions add` (the ARN ends in a random suffix).
    "notification_secrets:read" = [{ sid = "ReadSubscriptionSecrets", actions = ["secretsmanager:GetSecretValue"], resources = ["arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:${local.notify_secret_prefix}*"] }]
    # Frames posted to this stage's connections, and a connection closed (1008/1009, issue 19).
    "websocket:manage" = [{ sid = "ManageWebSocketConnections", actions = ["execute-api:ManageConnections"], resources = module.websocket.manage_connections_arns }]
  })
  notify_secret_prefix = "${var.name_prefix}/subscriptions/"

  # wiring.json names, per function, the variables that size its concurrency.
  concurrency_variables = {
    ingress_reserved_concurrency      = var.ingress_reserved_concurrency
    ingress_provisioned_concurrency   = var.ingress_provisioned_concurrency
    model_worker_reserved_concurrency = var.model_worker_reserved_concurrency
  }

  # Every function gets the same settings (mangaassist/settings.py names each): what Lambda sets
  # itself (AWS_*) and the local stack's LOCAL_* are never here; optional ones are left out when
  # null (MODEL_CANDIDATE_ID, the JWT issuer's three). Output function_environment_keys lists them.
  environment = merge(
    {
      BUILD_VERSION                = local.build_version
      POWERTOOLS_METRICS_NAMESPACE = "MangaAssist" # modules/observability's dashboard and alarms read it
      EVENT_BUS_NAME               = module.event_bus.bus_name
      WEBHOOK_SOURCES              = jsonencode(local.wiring.sources)
      WEBHOOK_SECRET_PREFIX        = module.webhooks.secret_prefix
      WEBHOOK_MAX_BODY_BYTES       = tostring(var.webhook_max_body_bytes)
      MODEL_PROVIDER               = "bedrock"
      MODEL_FAST_ID                = var.model_fast_id
      MODEL_FALLBACK_ID            = var.model_fallback_id
      EMBEDDINGS_PROVIDER          = "bedrock"
      EMBEDDINGS_MODEL_ID          = var.embeddings_model_id
      EMBEDDINGS_DIMENSION         = tostring(var.embeddings_dimension)
      VECTOR_STORE                 = "opensearch"
      VECTOR_INDEX                 = "products"
      OPENSEARCH_ENDPOINT          = module.search.collection_endpoint
      APPCONFIG_APPLICATION        = module.flags.application_name
      APPCONFIG_ENVIRONMENT        = module.flags.environment_name
      APPCONFIG_PROFILE            = module.flags.profile_name
      FLAGS_MAX_AGE_SECONDS        = tostring(var.flags_max_age_seconds)
      JWT_REQUIRED                 = tostring(var.jwt_required)
      NOTIFY_SECRET_PREFIX         = local.notify_secret_prefix
      NOTIFY_ALLOW_LOOPBACK        = "false" # receivers on 127.0.0.1 exist only on the local stack
      NOTIFY_TIME_SCALE            = "1"     # the retry schedule as written (the local stack shrinks it)
      WEBSOCKET_CALLBACK_URL       = module.websocket.callback_url
    },
    var.model_candidate_id == null ? {} : { MODEL_CANDIDATE_ID = var.model_candidate_id },
    var.jwt_authorizer == null ? {} : {
      JWT_ISSUER   = var.jwt_authorizer.issuer
      JWT_AUDIENCE = var.jwt_authorizer.audience
      JWT_JWKS_URL = var.jwt_authorizer.jwks_url
    },
    # The jobs queue's receives are the worker's attempts: the last one records the failure.
    can(local.wiring.queues.jobs.max_receive_count) ? { JOB_MAX_ATTEMPTS = tostring(local.wiring.queues.jobs.max_receive_count) } : {},
    { for t, n in module.data.table_names : "${upper(t)}_TABLE" => n },
    { for b, n in module.data.bucket_names : "${upper(b)}_BUCKET" => n },
    { for q, url in module.event_bus.queue_urls : "${upper(q)}_QUEUE_URL" => url },
    { for q, url in module.event_bus.queue_dlq_urls : "${upper(q)}_DLQ_URL" => url },
  )

  functions = {
    for name, f in local.wiring.functions : name => {
      filename                = "${local.build_dir}/${try(local.manifest.functions[name].path, "functions/${name}.zip")}"
      source_code_hash        = try(local.manifest.functions[name].source_code_hash, "")
      description             = f.description
      timeout                 = f.timeout
      memory_size             = f.memory_size
      reserved_concurrency    = try(local.concurrency_variables[f.reserved_concurrency_variable], -1)
      provisioned_concurrency = try(local.concurrency_variables[f.provisioned_concurrency_variable], 0)
      environment             = local.environment
      policy_statements       = flatten([for p in f.permissions : local.permission_statements[p]])
    }
  }

  rules = {
    for name, rule in local.wiring.rules : name => {
      description   = rule.description
      event_pattern = jsonencode(rule.event_pattern)
      targets = {
        for id, t in rule.targets : id => {
          type = try(t.function, null) != null ? "lambda" : "sqs"
          # From the functions module's outputs: the target, its permission and its invoke
          # config are created after the function and its alias.
          arn           = try(module.functions.alias_arns[t.function], null)
          function_name = try(module.functions.function_names[t.function], null)
          qualifier     = try(t.function, null) != null ? module.functions.alias_name : null
          role_name     = try(module.functions.role_names[t.function], null)
          queue         = try(t.queue, null)
          retry_policy  = try(t.retry_policy, {})
          input_transformer = try({
            input_paths    = t.input_transformer.InputPathsMap
            input_template = t.input_transformer.InputTemplate
          }, null)
        }
      }
    }
  }
}

module "data" {
  source = "./modules/data"

  name_prefix            = var.name_prefix
  tables                 = local.wiring.tables
  buckets                = local.wiring.buckets
  force_destroy          = var.force_destroy
  point_in_time_recovery = var.point_in_time_recovery
  kms_key_arn            = var.kms_key_arn
}

module "event_bus" {
  source = "./modules/event_bus"

  name_prefix = var.name_prefix
  archive = {
    event_pattern  = try(jsonencode(local.wiring.archive.event_pattern), null)
    retention_days = try(local.wiring.archive.retention_days, 90)
  }
  queues                 = local.wiring.queues
  rules                  = local.rules
  forwarding             = var.forwarding
  dlq_alarm_actions      = module.observability.alarm_actions
  kms_key_arn            = var.kms_key_arn
  create_schema_registry = var.enable_schema_registry
  # Registry names allow [.-_A-Za-z0-9]: events/mangaassist.payments/PaymentCompleted -> mangaassist.payments@PaymentCompleted
  schemas = {
    for f in fileset(local.schema_dir, "**/*.schema.json") :
    replace(trimsuffix(trimprefix(f, "events/"), ".schema.json"), "/", "@") => file("${local.schema_dir}/${f}")
  }
}

module "functions" {
  source = "./modules/functions"

  name_prefix        = var.name_prefix
  runtime            = var.lambda_runtime
  architecture       = local.manifest.architecture == "arm64" ? "arm64" : "x86_64"
  log_retention_days = var.log_retention_days
  tracing_mode       = var.lambda_tracing_mode
  kms_key_arn        = var.kms_key_arn
  layer = {
    filename         = "${local.build_dir}/${local.manifest.layers.shared.path}"
    source_code_hash = local.manifest.layers.shared.source_code_hash
  }
  functions = local.functions
}

module "webhooks" {
  source = "./modules/webhooks"

  name_prefix                 = var.name_prefix
  sources                     = { for name, s in local.wiring.sources : name => { scheme = s.scheme } }
  function_name               = module.functions.function_names["webhook_ingress"]
  qualifier                   = module.functions.alias_name
  log_group_name              = module.functions.log_group_names["webhook_ingress"]
  alarm_actions               = module.observability.alarm_actions
  cors_allow_origins          = var.webhook_cors_allow_origins
  secret_recovery_window_days = var.secret_recovery_window_days
  kms_key_arn                 = var.kms_key_arn
}

# The collection admits the roles of the functions whose wiring asks for search:write or
# search:read. Roles are known by ARN before they exist (the naming rule), so the data access
# policy need not wait for the functions module.
module "search" {
  source = "./modules/search"

  name_prefix               = var.name_prefix
  writer_role_arns          = [for name, f in local.wiring.functions : "arn:${local.partition}:iam::${local.account_id}:role/${var.name_prefix}-${name}" if contains(f.permissions, "search:write")]
  reader_role_arns          = [for name, f in local.wiring.functions : "arn:${local.partition}:iam::${local.account_id}:role/${var.name_prefix}-${name}" if contains(f.permissions, "search:read")]
  standby_replicas          = var.search_standby_replicas
  allow_public_network      = var.search_allow_public_network
  kms_key_arn               = var.kms_key_arn
  create_data_access_policy = var.enable_search_data_access_policy
}

# Queue targets are drained by their function in batches, reporting partial failures; a
# batching window lets a busy queue fill its batches (fewer, larger invocations).
resource "aws_lambda_event_source_mapping" "queue" {
  for_each                           = local.wiring.queues
  event_source_arn                   = module.event_bus.queue_arns[each.key]
  function_name                      = module.functions.alias_arns[each.value.function]
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = lookup(each.value, "maximum_batching_window_seconds", 0)
  function_response_types            = ["ReportBatchItemFailures"]

  lifecycle {
    # Lambda refuses a queue whose visibility timeout is shorter than its consumer's timeout.
    precondition {
      condition     = each.value.visibility_timeout_seconds >= local.wiring.functions[each.value.function].timeout
      error_message = "wiring.json: queue ${each.key}'s visibility_timeout_seconds is below ${each.value.function}'s timeout (${local.wiring.functions[each.value.function].timeout} s); AWS recommends six times it."
    }
  }

  dynamic "scaling_config" {
    for_each = lookup(each.value, "maximum_concurrency", null) == null ? [] : [each.value.maximum_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }
}

# The REST API's body is the committed OpenAPI document (make openapi) plus API Gateway's
# extensions, which the module adds from the routes and authorizers here.
module "api" {
  source = "./modules/api"

  name_prefix = var.name_prefix
  routes      = local.wiring.routes
  document    = file("${local.schema_dir}/api/openapi.json")
  authorizers = {
    for name, a in try(local.wiring.authorizers, {}) : name => {
      invoke_arn         = module.functions.invoke_arns[a.function]
      function_name      = module.functions.function_names[a.function]
      result_ttl_seconds = try(a.result_ttl_seconds, 0)
    }
  }
  invoke_arns                    = module.functions.invoke_arns
  function_names                 = module.functions.function_names
  qualifier                      = module.functions.alias_name
  stage_name                     = var.api_stage_name
  environment                    = var.environment
  throttle                       = var.api_key_throttle
  stage_throttle                 = var.api_stage_throttle
  execution_logging_level        = var.api_execution_logging_level
  manage_account_cloudwatch_role = var.manage_api_gateway_account_role
  xray_tracing                   = var.api_xray_tracing
  waf                            = var.waf
  log_retention_days             = var.log_retention_days
  kms_key_arn                    = var.kms_key_arn
}

# The streaming API (wiring.json's websocket): its routes call one function's alias, $connect
# the authorizer; the clients' API key is in the usage plan covering its stage.
module "websocket" {
  source = "./modules/websocket"

  name_prefix                = var.name_prefix
  routes                     = local.wiring.websocket.routes
  route_selection_expression = local.wiring.websocket.route_selection_expression
  invoke_arn                 = module.functions.invoke_arns[local.wiring.websocket.function]
  function_name              = module.functions.function_names[local.wiring.websocket.function]
  authorizer_invoke_arn      = module.functions.invoke_arns[local.wiring.authorizers[local.wiring.websocket.authorizer].function]
  authorizer_function_name   = module.functions.function_names[local.wiring.authorizers[local.wiring.websocket.authorizer].function]
  qualifier                  = module.functions.alias_name
  api_key_required           = try(local.wiring.websocket.api_key_required, true)
  api_key_ids                = { clients = module.api.api_key_id }
  stage_name                 = var.api_stage_name
  throttle                   = local.wiring.websocket.throttle
  execution_logging_level    = module.api.execution_logging_level # after the account's CloudWatch role
  create_deployment          = var.enable_websocket_deployment
  log_retention_days         = var.log_retention_days
  kms_key_arn                = var.kms_key_arn
}

# Feature flags: config/flags.json hosted in AppConfig and rolled out gradually, rolled back by
# the API's 5XX alarm and the model-errors alarm.
module "flags" {
  source = "./modules/flags"

  name_prefix                       = var.name_prefix
  environment                       = var.environment
  flags_content                     = file("${path.module}/../config/flags.json")
  rollout                           = var.flags_rollout
  alarm_arns                        = module.observability.rollback_alarm_arns
  create_environment_and_deployment = var.enable_flags_deployment
  kms_key_arn                       = var.kms_key_arn
}

module "observability" {
  source = "./modules/observability"

  name_prefix         = var.name_prefix
  alarm_subscribers   = var.alarm_subscribers
  extra_alarm_actions = var.alarm_topic_arns
  thresholds          = var.alarm_thresholds
  function_names      = module.functions.function_names
  rule_names          = module.event_bus.rule_names
  bus_name            = module.event_bus.bus_name
  table_names         = module.data.table_names
  queue_names         = module.event_bus.queue_names
  dlq_names           = merge(module.event_bus.dlq_names, module.event_bus.queue_dlq_names)
  api                 = { name = module.api.api_name, stage = module.api.stage_name }
}
