# ROLE_SAGEMAKER_EXECUTION (DA-full §5.1.10, §8.6): what SageMaker training jobs, the endpoint and batch
# transforms run as. Reads the OFS datasets and writes model artifacts in the artifacts bucket, pulls the
# platform image, writes its own logs, and places its network interfaces in the private subnets (VpcConfig).

data "aws_iam_policy_document" "sagemaker_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.aws_account_id]
    }
  }
}

resource "aws_iam_role" "sagemaker_execution" {
  name               = var.sagemaker_execution_role_name
  assume_role_policy = data.aws_iam_policy_document.sagemaker_trust.json
}

data "aws_iam_policy_document" "sagemaker_execution" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arns["artifacts"]]
  }
  statement {
    sid       = "ReadWriteArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${local.bucket_arns["artifacts"]}/*"]
  }
  statement {
    sid       = "UsePlatformKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey"]
    resources = [var.core.kms_key_arn]
  }
  statement {
    sid       = "EcrLogin" # GetAuthorizationToken has no resource-level scope
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullPlatformImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [local.ecr_arn]
  }
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["arn:aws:logs:${var.aws_region}:${var.aws_account_id}:log-group:/aws/sagemaker/*"]
  }
  statement {
    sid       = "PutOwnMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource-level scope: the namespace condition scopes it
    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }
  statement {
    sid       = "VpcDescribe" # describes have no resource-level scope
    actions   = ["ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces", "ec2:DescribeDhcpOptions"]
    resources = ["*"]
  }
  statement {
    sid       = "VpcInterfaces" # VpcConfig: interfaces in the platform's private subnets only
    actions   = ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"]
    resources = ["arn:aws:ec2:${var.aws_region}:${var.aws_account_id}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = ["arn:aws:ec2:${var.aws_region}:${var.aws_account_id}:vpc/${var.core.vpc_id}"]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker_execution" {
  name   = "${var.sagemaker_execution_role_name}-access"
  role   = aws_iam_role.sagemaker_execution.id
  policy = data.aws_iam_policy_document.sagemaker_execution.json
}

resource "aws_ssm_parameter" "sagemaker_role_arn" {
  name   = var.ssm_paths["sagemaker_model_exec_role_arn"]
  type   = "SecureString"
  key_id = var.core.kms_key_arn
  value  = aws_iam_role.sagemaker_execution.arn
}

output "data_ml" {
  description = "Endpoints and ARNs (the credentials stay in SSM)."
  value = {
    aurora_endpoint        = aws_rds_cluster.aurora.endpoint
    aurora_reader_endpoint = aws_rds_cluster.aurora.reader_endpoint
    sagemaker_role_arn     = aws_iam_role.sagemaker_execution.arn
    glue_database          = aws_glue_catalog_database.iceberg.name
  }
}
