# The platform: the wiring (which function does what) is data in wiring.json, read here and by
# the local stack (scripts/local_stack.py); the zips and their hashes come from build/manifest.json.
provider "aws" {
  region = var.region
  default_tags {
    tags = merge({ project = "mangaassist", managed_by = "terraform" }, var.tags)
  }
}

locals {
  manifest_path = coalesce(var.manifest_path, "${path.module}/../build/manifest.json")
  build_dir     = dirname(local.manifest_path)
  manifest      = jsondecode(file(local.manifest_path))
  wiring        = jsondecode(file("${path.module}/wiring.json"))

  # Permission names used in wiring.json -> the IAM statements they grant, scoped to one resource.
  permission_statements = {}

  functions = {
    for name, f in local.wiring.functions : name => {
      filename         = "${local.build_dir}/${local.manifest.functions[name].path}"
      source_code_hash = local.manifest.functions[name].source_code_hash
      description      = f.description
      timeout          = f.timeout
      memory_size      = f.memory_size
      environment      = {}
      policy_statements = flatten([
        for p in f.permissions : local.permission_statements[p]
      ])
    }
  }
}

module "functions" {
  source = "./modules/functions"

  name_prefix        = var.name_prefix
  runtime            = var.lambda_runtime
  architecture       = local.manifest.architecture == "arm64" ? "arm64" : "x86_64"
  log_retention_days = var.log_retention_days
  layer = {
    filename         = "${local.build_dir}/${local.manifest.layers.shared.path}"
    source_code_hash = local.manifest.layers.shared.source_code_hash
  }
  functions = local.functions
}
