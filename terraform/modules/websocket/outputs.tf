output "api_id" {
  description = "The WebSocket API's id."
  value       = aws_apigatewayv2_api.this.id
}

output "api_name" {
  description = "The WebSocket API's name (the ApiId dimension is its id)."
  value       = aws_apigatewayv2_api.this.name
}

output "url" {
  description = "Where clients connect: wss://<api id>.execute-api.<region>.amazonaws.com/<stage>."
  value       = "${aws_apigatewayv2_api.this.api_endpoint}/${var.stage_name}"
}

output "callback_url" {
  description = "The @connections endpoint functions post frames to (https://<api id>.execute-api.<region>.amazonaws.com/<stage>). Built from the API and the stage's name, not the stage resource, so the functions (whose alias the routes invoke) can be given it without a cycle."
  value       = local.callback
}

output "manage_connections_arns" {
  description = "What websocket:manage grants execute-api:ManageConnections on: posting frames to and closing this stage's connections."
  value       = ["${aws_apigatewayv2_api.this.execution_arn}/${var.stage_name}/POST/@connections/*", "${aws_apigatewayv2_api.this.execution_arn}/${var.stage_name}/DELETE/@connections/*"]
}

output "stage_name" {
  description = "The stage's name."
  value       = aws_apigatewayv2_stage.this.name
}

output "route_ids" {
  description = "Route id by route key."
  value       = { for k, r in aws_apigatewayv2_route.this : k => r.id }
}

output "authorizer_id" {
  description = "The $connect authorizer's id."
  value       = aws_apigatewayv2_authorizer.this.id
}

output "usage_plan_id" {
  description = "The usage plan covering the stage."
  value       = aws_api_gateway_usage_plan.this.id
}

output "access_log_group_name" {
  description = "The access log group (JSON lines: request and connection id, route, status...)."
  value       = aws_cloudwatch_log_group.access.name
}
