output "collection_arn" {
  description = "ARN of the collection (what aoss:APIAccessAll is granted on)."
  value       = aws_opensearchserverless_collection.products.arn
}

output "collection_endpoint" {
  description = "HTTPS endpoint the functions sign requests to (OPENSEARCH_ENDPOINT)."
  value       = aws_opensearchserverless_collection.products.collection_endpoint
}

output "data_access_roles" {
  description = "The roles the data access policy admits: writers (create indexes, write documents) and readers."
  value       = { writers = var.writer_role_arns, readers = var.reader_role_arns }
}
