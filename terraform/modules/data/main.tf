# Tables and buckets: encrypted, private, recoverable.
data "aws_caller_identity" "current" {}

locals {
  # Every key attribute a table declares: its own keys and its indexes' (all strings), once each.
  key_attributes = {
    for t, spec in var.tables : t => sort(distinct(compact(concat(
      [spec.hash_key, spec.range_key],
      flatten([for i in values(spec.global_secondary_indexes) : [i.hash_key, i.range_key]]),
    ))))
  }
}

resource "aws_dynamodb_table" "this" {
  for_each     = var.tables
  name         = "${var.name_prefix}-${each.key}"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = each.value.hash_key
  range_key    = each.value.range_key

  dynamic "attribute" {
    for_each = local.key_attributes[each.key]
    content {
      name = attribute.value
      type = "S"
    }
  }

  # On-demand like the table: no capacity to size; every attribute projected, so a query on an
  # index never needs a second read of the table.
  dynamic "global_secondary_index" {
    for_each = each.value.global_secondary_indexes
    content {
      name            = global_secondary_index.key
      hash_key        = global_secondary_index.value.hash_key
      range_key       = global_secondary_index.value.range_key
      projection_type = "ALL"
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = !var.force_destroy
  tags                        = var.tags
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Only the functions' roles reach these buckets (public access blocked, TLS only); request auditing is CloudTrail's S3 data events, an account-wide trail, not a log bucket per deployment
  #checkov:skip=CKV2_AWS_62:Nothing reacts to objects here: events travel on the bus, and the raw payloads are read back only for replays and investigations
  #checkov:skip=CKV_AWS_144:Both are re-creatable (raw payloads are what partners sent and can redeliver, analytics is derived from the archived events); versioning covers deletion, and replication would double storage for a second region the platform does not run in
  for_each = var.buckets
  # Bucket names are global: the account id keeps them unique without a random suffix.
  bucket        = "${var.name_prefix}-${replace(each.key, "_", "-")}-${data.aws_caller_identity.current.account_id}"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = var.buckets
  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = var.buckets
  bucket   = aws_s3_bucket.this[each.key].id

  rule {
    id     = "age-out"
    status = "Enabled"
    filter {}

    dynamic "transition" {
      for_each = each.value.ia_days > 0 ? [each.value.ia_days] : []
      content {
        days          = transition.value
        storage_class = "STANDARD_IA"
      }
    }

    dynamic "expiration" {
      for_each = each.value.expire_days > 0 ? [each.value.expire_days] : []
      content {
        days = expiration.value
      }
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# TLS only, whoever asks.
data "aws_iam_policy_document" "tls_only" {
  for_each = var.buckets
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[each.key].arn, "${aws_s3_bucket.this[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each   = var.buckets
  bucket     = aws_s3_bucket.this[each.key].id
  policy     = data.aws_iam_policy_document.tls_only[each.key].json
  depends_on = [aws_s3_bucket_public_access_block.this]
}
