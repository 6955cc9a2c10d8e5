# Every bucket (the data buckets and the Terraform state bucket): private, encrypted, versioned, TLS only
# (DA-full §5.1.5, §10.1, §14.3). Lifecycle rules come from the RETENTION_* and *_TRANSITION_* handles.

resource "aws_s3_bucket" "this" {
  for_each = local.buckets

  bucket = each.value
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# SSE-KMS with the platform key and bucket keys (few KMS requests).
resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.platform.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = aws_s3_bucket.this

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"] # a Deny: every action over plain HTTP is refused
    resources = [
      each.value.arn,
      "${each.value.arn}/*",
    ]
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

resource "aws_s3_bucket_policy" "tls_only" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# Expiry and transitions from the handles; noncurrent versions expire on the same clock, or versioning
# would keep every expired object (and its cost). Every bucket aborts unfinished multipart uploads.
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    id     = "abort-incomplete-multipart"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  dynamic "rule" {
    for_each = try(var.bucket_lifecycle[each.key].expiry_days, null) == null ? [] : [var.bucket_lifecycle[each.key].expiry_days]
    content {
      id     = "retention-expiry"
      status = "Enabled"
      filter {}
      expiration {
        days = rule.value
      }
      noncurrent_version_expiration {
        noncurrent_days = rule.value
      }
    }
  }

  dynamic "rule" {
    for_each = length(try(var.bucket_lifecycle[each.key].transitions, {})) == 0 ? [] : [var.bucket_lifecycle[each.key].transitions]
    content {
      id     = "retention-transitions"
      status = "Enabled"
      filter {}
      dynamic "transition" {
        for_each = rule.value
        content {
          storage_class = transition.key
          days          = transition.value
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
