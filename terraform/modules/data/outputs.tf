output "table_names" {
  description = "Table name by logical name."
  value       = { for k, t in aws_dynamodb_table.this : k => t.name }
}

output "table_arns" {
  description = "Table ARN by logical name."
  value       = { for k, t in aws_dynamodb_table.this : k => t.arn }
}

output "bucket_names" {
  description = "Bucket name by logical name."
  value       = { for k, b in aws_s3_bucket.this : k => b.bucket }
}

output "bucket_arns" {
  description = "Bucket ARN by logical name."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "index_arns" {
  description = "By table: the ARN pattern of its global secondary indexes (<table arn>/index/*), or null when it has none."
  value       = { for k, t in aws_dynamodb_table.this : k => length(var.tables[k].global_secondary_indexes) > 0 ? "${t.arn}/index/*" : null }
}
