# The product vector index: an OpenSearch Serverless VECTORSEARCH collection, encrypted, with
# access granted only to the indexer (write) and the search function (read). Collection and
# policy names are at most 32 characters: the root module's name_prefix check covers them.
locals {
  collection = "${var.name_prefix}-products"
  resource   = ["collection/${local.collection}"]
  index      = ["index/${local.collection}/*"]
}

resource "aws_opensearchserverless_security_policy" "encryption" {
  name = "${var.name_prefix}-enc"
  type = "encryption"
  # With an AWS-owned key the policy names no key at all, as AWS's own examples do.
  policy = jsonencode(merge(
    { Rules = [{ ResourceType = "collection", Resource = local.resource }], AWSOwnedKey = var.kms_key_arn == null },
    var.kms_key_arn == null ? {} : { KmsARN = var.kms_key_arn },
  ))
}

resource "aws_opensearchserverless_security_policy" "network" {
  name = "${var.name_prefix}-net"
  type = "network"
  policy = jsonencode([{
    Rules           = [{ ResourceType = "collection", Resource = local.resource }]
    AllowFromPublic = var.allow_public_network
  }])
}

resource "aws_opensearchserverless_access_policy" "data" {
  count = var.create_data_access_policy ? 1 : 0
  name  = "${var.name_prefix}-data"
  type  = "data"
  policy = jsonencode([
    {
      Description = "catalog indexer: create the index, write documents"
      Principal   = var.writer_role_arns
      Rules = [
        { ResourceType = "index", Resource = local.index, Permission = ["aoss:CreateIndex", "aoss:DescribeIndex", "aoss:UpdateIndex", "aoss:ReadDocument", "aoss:WriteDocument"] },
        { ResourceType = "collection", Resource = local.resource, Permission = ["aoss:DescribeCollectionItems"] },
      ]
    },
    {
      Description = "search: read only"
      Principal   = var.reader_role_arns
      Rules = [
        { ResourceType = "index", Resource = local.index, Permission = ["aoss:DescribeIndex", "aoss:ReadDocument"] },
      ]
    },
  ])
}

resource "aws_opensearchserverless_collection" "products" {
  name             = local.collection
  type             = "VECTORSEARCH"
  description      = "Product embeddings for semantic search and recommendations."
  standby_replicas = var.standby_replicas
  tags             = var.tags
  depends_on       = [aws_opensearchserverless_security_policy.encryption, aws_opensearchserverless_security_policy.network]
}
