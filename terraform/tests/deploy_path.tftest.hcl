# What a first apply needs: each fix of issue 14 at its cause, and bad input refused at plan time
# with a message that names the variable.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  manifest_path = "tests/fixtures/manifest.json"
  name_prefix   = "mangaassist-test"
}

# The mocked alias ARN (…:function:mock-from-alias:live) is what only the functions module can
# produce: a string built from the naming rule would not equal it.
run "a_targets_arn_comes_from_the_functions_module" {
  command = apply

  assert {
    condition = alltrue(flatten([for r, rule in jsondecode(file("wiring.json")).rules : [
      for t, target in rule.targets : module.event_bus.target_arns["${r}/${t}"] == module.functions.alias_arns[target.function] if can(target.function)
    ]]))
    error_message = "every Lambda target is its function's alias, from the functions module's outputs"
  }
  assert {
    condition     = module.event_bus.target_arns["payment-completed/order-confirmation"] == "arn:aws:lambda:ap-northeast-1:123456789012:function:mock-from-alias:live"
    error_message = "the target ARN is the alias resource's own ARN, not a string built in locals"
  }
}

# Planning only the permissions and invoke configs must plan what they need first: the
# functions (and aliases) they name, and the role policy Lambda checks.
run "permissions_and_invoke_configs_wait_for_the_functions" {
  command = plan
  plan_options {
    target = [module.event_bus.aws_lambda_permission.events, module.event_bus.aws_lambda_function_event_invoke_config.target]
  }

  assert {
    condition     = length(module.functions.function_names) == length(jsondecode(file("wiring.json")).functions)
    error_message = "the functions are planned before the rule targets' permissions and invoke configs"
  }
}

# What names the alias as its qualifier must wait for the alias, not only the function: Lambda
# answers "Function not found" for a qualifier that does not exist yet (a first apply on moto
# created the function URL before the alias). Each is planned alone here.
run "the_function_url_waits_for_the_alias" {
  command = apply
  plan_options {
    target = [module.webhooks.aws_lambda_function_url.ingress, module.webhooks.aws_lambda_permission.url, module.webhooks.aws_lambda_permission.url_invoke]
  }

  assert {
    condition     = module.functions.alias_name == "live"
    error_message = "the function URL and its permissions take their qualifier from the aliases, so the aliases are created first"
  }
}

run "invoke_permissions_and_configs_wait_for_the_aliases" {
  command = apply
  plan_options {
    target = [module.api.aws_lambda_permission.api, module.event_bus.aws_lambda_permission.events, module.event_bus.aws_lambda_function_event_invoke_config.target]
  }

  assert {
    condition     = module.functions.alias_name == "live"
    error_message = "the invoke permissions and configs take their qualifier from the aliases, so the aliases are created first"
  }
}

run "the_invoke_config_waits_for_its_role_policy" {
  command = plan
  module {
    source = "./modules/event_bus"
  }
  plan_options {
    target = [aws_lambda_function_event_invoke_config.target]
  }
  variables {
    rules = {
      payments = {
        event_pattern = "{\"source\":[\"mangaassist.payments\"]}"
        targets       = { confirm = { type = "lambda", arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:f:live", function_name = "f", qualifier = "live", role_name = "f-role" } }
      }
    }
  }

  assert {
    condition     = output.failure_destination_grants == { f = "f-role" }
    error_message = "the role policy that lets the function send to its failure destination is planned with (before) the invoke config"
  }
}

run "the_environment_reaches_the_stage_and_the_build_version_every_function" {
  command = plan
  variables {
    environment = "staging"
  }

  assert {
    condition     = output.environment == "staging"
    error_message = "the environment is an input"
  }
  assert {
    condition     = alltrue([for env in values(module.functions.environment_variables) : env["BUILD_VERSION"] == jsondecode(file("tests/fixtures/manifest.json")).build_version])
    error_message = "every function has BUILD_VERSION from the manifest"
  }
  assert {
    condition     = alltrue([for env in values(module.functions.environment_variables) : !contains(keys(env), "FUNCTION_ROLE")])
    error_message = "FUNCTION_ROLE (set, never read) is gone"
  }
}

run "the_collection_admits_the_roles_the_wiring_asks_for" {
  command = plan

  assert {
    condition     = toset(module.search.data_access_roles.writers) == toset([for k, f in jsondecode(file("wiring.json")).functions : "arn:aws:iam::123456789012:role/mangaassist-test-${k}" if contains(f.permissions, "search:write")])
    error_message = "every function with search:write, and only those, may write to the collection"
  }
  assert {
    condition     = toset(module.search.data_access_roles.readers) == toset([for k, f in jsondecode(file("wiring.json")).functions : "arn:aws:iam::123456789012:role/mangaassist-test-${k}" if contains(f.permissions, "search:read")]) && contains(module.search.data_access_roles.readers, "arn:aws:iam::123456789012:role/mangaassist-test-search")
    error_message = "every function with search:read may read the collection"
  }
}

run "bad_input_a_prefix_too_long" {
  command = plan
  variables {
    name_prefix = "mangaassist-production-tokyo"
  }
  expect_failures = [var.name_prefix]
}

run "bad_input_a_stage_throttle_of_zero" {
  command = plan
  variables {
    api_stage_throttle = { rate_limit = 0 }
  }
  expect_failures = [var.api_stage_throttle]
}

run "bad_input_a_key_throttle_of_zero" {
  command = plan
  variables {
    api_key_throttle = { burst_limit = 0 }
  }
  expect_failures = [var.api_key_throttle]
}

run "bad_input_an_unknown_waf_rule" {
  command = plan
  variables {
    waf = { managed_rule_groups = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesEverythingBad"] }
  }
  expect_failures = [var.waf]
}

run "bad_input_a_forwarding_target_that_is_not_a_bus" {
  command = plan
  variables {
    forwarding = { lake = { event_pattern = "{\"source\":[\"mangaassist.ai\"]}", target_bus_arn = "arn:aws:sqs:ap-northeast-1:210987654321:not-a-bus" } }
  }
  expect_failures = [var.forwarding]
}
