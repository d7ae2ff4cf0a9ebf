# The AWS provider's fake answers for every terraform test file: ARNs shaped like AWS's, so
# assertions can tell a value that came from a resource from a string built elsewhere.
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
  defaults = { arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:mock", version = "7" }
}
mock_resource "aws_lambda_alias" {
  defaults = { arn = "arn:aws:lambda:ap-northeast-1:123456789012:function:mock-from-alias:live", invoke_arn = "arn:aws:apigateway:ap-northeast-1:lambda:path/2015-03-31/functions/arn:aws:lambda:ap-northeast-1:123456789012:function:mock-from-alias:live/invocations" }
}
mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:ap-northeast-1:123456789012:mock-alarms" }
}
mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:ap-northeast-1:123456789012:log-group:mock" }
}
mock_resource "aws_wafv2_web_acl" {
  defaults = { arn = "arn:aws:wafv2:ap-northeast-1:123456789012:regional/webacl/mock/00000000-0000-0000-0000-000000000000" }
}
mock_resource "aws_cloudwatch_event_bus" {
  defaults = { arn = "arn:aws:events:ap-northeast-1:123456789012:event-bus/mock" }
}
mock_resource "aws_cloudwatch_event_rule" {
  defaults = { arn = "arn:aws:events:ap-northeast-1:123456789012:rule/mock/mock" }
}
mock_resource "aws_cloudwatch_event_archive" {
  defaults = { arn = "arn:aws:events:ap-northeast-1:123456789012:archive/mock" }
}
mock_resource "aws_sqs_queue" {
  defaults = { arn = "arn:aws:sqs:ap-northeast-1:123456789012:mock", id = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/mock", url = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/mock" }
}
mock_resource "aws_dynamodb_table" {
  defaults = { arn = "arn:aws:dynamodb:ap-northeast-1:123456789012:table/mock" }
}
mock_resource "aws_s3_bucket" {
  defaults = { arn = "arn:aws:s3:::mock" }
}
mock_resource "aws_schemas_registry" {
  defaults = { arn = "arn:aws:schemas:ap-northeast-1:123456789012:registry/mock" }
}
mock_resource "aws_secretsmanager_secret" {
  defaults = { arn = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:mock" }
}
mock_resource "aws_opensearchserverless_collection" {
  defaults = { arn = "arn:aws:aoss:ap-northeast-1:123456789012:collection/mock", collection_endpoint = "https://mock.ap-northeast-1.aoss.amazonaws.com" }
}
mock_resource "aws_api_gateway_rest_api" {
  defaults = { execution_arn = "arn:aws:execute-api:ap-northeast-1:123456789012:mockapi", id = "mockapi" }
}
mock_resource "aws_lambda_function_url" {
  defaults = { function_url = "https://mock.lambda-url.ap-northeast-1.on.aws/" }
}
mock_resource "aws_api_gateway_stage" {
  defaults = { arn = "arn:aws:apigateway:ap-northeast-1::/restapis/mockapi/stages/live", invoke_url = "https://mockapi.execute-api.ap-northeast-1.amazonaws.com/live" }
}
mock_resource "aws_cloudwatch_metric_alarm" {
  defaults = { arn = "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:mock" }
}
mock_resource "aws_apigatewayv2_api" {
  defaults = { id = "mockws", api_endpoint = "wss://mockws.execute-api.ap-northeast-1.amazonaws.com", execution_arn = "arn:aws:execute-api:ap-northeast-1:123456789012:mockws" }
}
mock_resource "aws_apigatewayv2_authorizer" {
  defaults = { id = "mockauth" }
}
mock_resource "aws_apigatewayv2_integration" {
  defaults = { id = "mockint" }
}
mock_resource "aws_appconfig_application" {
  defaults = { id = "mockapp", arn = "arn:aws:appconfig:ap-northeast-1:123456789012:application/mockapp" }
}
mock_resource "aws_appconfig_configuration_profile" {
  defaults = { id = "mockprf:mockapp", configuration_profile_id = "mockprf", arn = "arn:aws:appconfig:ap-northeast-1:123456789012:application/mockapp/configurationprofile/mockprf" }
}
mock_resource "aws_appconfig_environment" {
  defaults = { id = "mockenv:mockapp", environment_id = "mockenv", arn = "arn:aws:appconfig:ap-northeast-1:123456789012:application/mockapp/environment/mockenv" }
}
mock_resource "aws_appconfig_deployment_strategy" {
  defaults = { id = "mockstr", arn = "arn:aws:appconfig:ap-northeast-1:123456789012:deploymentstrategy/mockstr" }
}
mock_resource "aws_appconfig_hosted_configuration_version" {
  defaults = { version_number = 1, arn = "arn:aws:appconfig:ap-northeast-1:123456789012:application/mockapp/configurationprofile/mockprf/hostedconfigurationversion/1" }
}
