# Plans the root module against a mocked AWS provider: offline, no credentials.
mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "ap-northeast-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_lambda_layer_version" {
    defaults = { arn = "arn:aws:lambda:ap-northeast-1:123456789012:layer:mock:1" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:mock" }
  }
}

variables {
  manifest_path = "tests/fixtures/manifest.json"
  name_prefix   = "mangaassist-test"
}

run "functions_come_from_the_wiring_and_the_manifest" {
  command = plan

  assert {
    condition     = module.functions.function_names["health"] == "mangaassist-test-health"
    error_message = "the health function is named from the prefix and its folder"
  }
  assert {
    condition     = module.functions.function_names == { for k, _ in jsondecode(file("wiring.json")).functions : k => "mangaassist-test-${k}" }
    error_message = "every function in wiring.json is deployed, and nothing else"
  }
}

run "zips_and_hashes_come_from_the_manifest" {
  command = apply

  assert {
    condition     = module.functions.layer_arn == "arn:aws:lambda:ap-northeast-1:123456789012:layer:mock:1"
    error_message = "the functions use the shared layer"
  }
}

# The functions module on its own: what every function gets.
run "functions_module_least_privilege_and_hashes" {
  command = apply
  module {
    source = "./modules/functions"
  }
  variables {
    layer = { filename = "build/layers/shared.zip", source_code_hash = "bGF5ZXI=" }
    functions = {
      ingress = {
        filename             = "build/functions/ingress.zip"
        source_code_hash     = "aW5ncmVzcw=="
        reserved_concurrency = 5
        environment          = { EVENT_BUS_NAME = "bus" }
        policy_statements    = [{ sid = "Publish", actions = ["events:PutEvents"], resources = ["arn:aws:events:ap-northeast-1:123456789012:event-bus/bus"] }]
      }
    }
  }

  assert {
    condition     = aws_lambda_function.function["ingress"].source_code_hash == "aW5ncmVzcw==" && aws_lambda_function.function["ingress"].filename == "build/functions/ingress.zip"
    error_message = "zip and hash come from the manifest entry"
  }
  assert {
    condition     = aws_lambda_function.function["ingress"].reserved_concurrent_executions == 5
    error_message = "reserved concurrency is passed through"
  }
  assert {
    condition     = aws_lambda_function.function["ingress"].environment[0].variables["EVENT_BUS_NAME"] == "bus" && aws_lambda_function.function["ingress"].environment[0].variables["POWERTOOLS_SERVICE_NAME"] == "mangaassist"
    error_message = "environment merges the function's variables over the defaults"
  }
  assert {
    condition     = aws_lambda_function.function["ingress"].role == aws_iam_role.function["ingress"].arn
    error_message = "each function runs as its own role"
  }
  assert {
    condition     = length(data.aws_iam_policy_document.function["ingress"].statement) == 2 && data.aws_iam_policy_document.function["ingress"].statement[1].actions == toset(["events:PutEvents"])
    error_message = "a role gets its own logs plus exactly the statements it was given"
  }
  assert {
    condition     = one(data.aws_iam_policy_document.function["ingress"].statement[0].resources) == "arn:aws:logs:ap-northeast-1:123456789012:log-group:/aws/lambda/mangaassist-test-ingress:*"
    error_message = "a function may write only to its own log group"
  }
  assert {
    condition     = aws_lambda_function.function["ingress"].layers == tolist([aws_lambda_layer_version.shared.arn])
    error_message = "every function uses the shared layer"
  }
}

run "functions_module_rejects_bad_sizing" {
  command = plan
  module {
    source = "./modules/functions"
  }
  variables {
    layer     = { filename = "l.zip", source_code_hash = "bA==" }
    functions = { bad = { filename = "b.zip", source_code_hash = "Yg==", timeout = 901 } }
  }
  expect_failures = [var.functions]
}
