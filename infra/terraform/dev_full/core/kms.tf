# The platform's customer-managed key (DA-full §5.1.15, §10.1): S3, SSM SecureStrings, the lock table, ECR,
# EKS secrets, Aurora storage, node volumes and CloudWatch log groups. The account administers it through
# IAM; CloudWatch Logs may use it only for this project's log groups.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:a key policy's "*" resource is the key itself; DA-full §10.1 (KMS-managed keys)
  #checkov:skip=CKV_AWS_111:a key policy's "*" resource is the key itself; DA-full §10.1 (KMS-managed keys)
  #checkov:skip=CKV_AWS_356:a key policy's "*" resource is the key itself; DA-full §10.1 (KMS-managed keys)
  statement {
    sid = "AccountAdministersThroughIam"
    actions = [ # listed, not kms:* (no wildcard action anywhere); the account must keep managing the key
      "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant", "kms:RetireGrant", "kms:DescribeKey",
      "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:ListKeyPolicies", "kms:GetKeyRotationStatus",
      "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:RotateKeyOnDemand", "kms:EnableKey", "kms:DisableKey",
      "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:UpdateKeyDescription", "kms:CreateAlias",
      "kms:UpdateAlias", "kms:DeleteAlias", "kms:ListAliases", "kms:ListResourceTags", "kms:TagResource",
      "kms:UntagResource", "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
      "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
    ]
    resources = ["*"] # in a key policy "*" is this key
    principals {
      type        = "AWS"
      identifiers = [local.account_arn]
    }
  }
  statement {
    sid       = "CloudWatchLogsForProjectGroups"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:aws:logs:${var.aws_region}:${var.aws_account_id}:log-group:/${var.project_slug}/*",
        "arn:aws:logs:${var.aws_region}:${var.aws_account_id}:log-group:/aws/eks/${var.eks_cluster_name}/*",
      ]
    }
  }
}

resource "aws_kms_key" "platform" {
  description             = "${local.name_prefix}: platform data, secrets and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "platform" {
  name          = var.kms_key_alias
  target_key_id = aws_kms_key.platform.key_id
}
