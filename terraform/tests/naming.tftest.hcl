# The one naming rule: every name Terraform derives equals names.json (what
# scripts/mangaassist_dev/naming.py derives for the same prefix), and name_prefix is checked
# against every service's limit with the names wiring.json makes.
mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  manifest_path = "tests/fixtures/manifest.json"
  name_prefix   = jsondecode(file("tests/fixtures/names.json")).name_prefix
}

run "every_name_is_the_fixtures" {
  command = plan

  assert {
    condition     = jsonencode(output.names) == jsonencode(jsondecode(file("tests/fixtures/names.json")).names)
    error_message = "output names differs from tests/fixtures/names.json: Terraform and mangaassist_dev.naming derive different names"
  }
  assert {
    condition     = module.functions.function_names == jsondecode(file("tests/fixtures/names.json")).names.functions && module.functions.role_names == jsondecode(file("tests/fixtures/names.json")).names.functions
    error_message = "functions and their roles are <prefix>-<function>"
  }
  assert {
    condition     = module.data.bucket_names == jsondecode(file("tests/fixtures/names.json")).names.buckets && module.data.table_names == jsondecode(file("tests/fixtures/names.json")).names.tables
    error_message = "buckets are <prefix>-<key with - for _>-<account>, tables <prefix>-<key>"
  }
  assert {
    condition     = module.event_bus.dlq_names == jsondecode(file("tests/fixtures/names.json")).names.target_dlqs && module.event_bus.queue_names == jsondecode(file("tests/fixtures/names.json")).names.queues && module.event_bus.queue_dlq_names == jsondecode(file("tests/fixtures/names.json")).names.queue_dlqs
    error_message = "target DLQs are <prefix>-dlq-<rule>-<target>, queues <prefix>-<queue>, their DLQs <prefix>-<queue>-dlq"
  }
  assert {
    condition     = module.event_bus.rule_names == jsondecode(file("tests/fixtures/names.json")).names.rules && module.event_bus.bus_name == jsondecode(file("tests/fixtures/names.json")).names.bus && module.event_bus.archive_name == jsondecode(file("tests/fixtures/names.json")).names.archive
    error_message = "rules are <prefix>-<rule>, the bus <prefix>-bus, the archive <prefix>-archive"
  }
  assert {
    condition     = module.webhooks.secret_names == jsondecode(file("tests/fixtures/names.json")).names.webhook_secrets
    error_message = "webhook secrets are <prefix>/webhooks/<source>"
  }
}

# The longest prefix the wiring allows: every derived name still fits, SQS's 80 included.
run "the_longest_allowed_prefix_fits_every_limit" {
  command = plan
  variables {
    name_prefix = substr("m${join("", [for i in range(80) : "x"])}", 0, run.every_name_is_the_fixtures.name_prefix_max_length)
  }

  assert {
    condition     = length(var.name_prefix) == run.every_name_is_the_fixtures.name_prefix_max_length
    error_message = "the run uses the longest allowed prefix"
  }
  assert {
    condition     = alltrue([for n in concat(values(output.names.queues), values(output.names.queue_dlqs), values(output.names.target_dlqs)) : length(n) <= 80])
    error_message = "every queue name fits SQS's 80 characters"
  }
  assert {
    condition     = alltrue([for n in values(output.names.functions) : length(n) <= 64]) && alltrue([for n in values(output.names.rules) : length(n) <= 64])
    error_message = "function, role and rule names fit 64 characters"
  }
  assert {
    condition     = alltrue([for n in values(output.names.buckets) : length(n) <= 63]) && length(output.names.archive) <= 48
    error_message = "bucket names fit 63 characters, the archive's 48"
  }
  assert {
    condition     = length("${var.name_prefix}-products") <= 32
    error_message = "the OpenSearch Serverless collection name fits 32 characters"
  }
}

run "a_prefix_one_character_longer_is_refused" {
  command = plan
  variables {
    name_prefix = substr("m${join("", [for i in range(80) : "x"])}", 0, run.every_name_is_the_fixtures.name_prefix_max_length + 1)
  }
  expect_failures = [var.name_prefix]
}

# A long rule/target pair in the wiring is what binds SQS's limit; the check sees forwarding
# rules too, which are not in wiring.json.
run "a_forwarding_rule_counts_against_the_sqs_limit" {
  command = plan
  variables {
    name_prefix = "mangaassist-test"
    forwarding = {
      "a-forwarding-rule-whose-name-alone-takes-most-of-the-eighty-chars" = {
        event_pattern  = "{\"source\":[\"mangaassist.payments\"]}"
        target_bus_arn = "arn:aws:events:ap-northeast-1:210987654321:event-bus/data-lake"
      }
    }
  }
  expect_failures = [var.name_prefix]
}
