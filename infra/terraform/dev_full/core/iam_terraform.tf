# ROLE_TERRAFORM_APPLY_DEV_FULL (DA-full §8.6): the operator/CI identity that applies the five stacks; never
# used at run time. Actions are listed one by one (no wildcard action); where AWS has no resource-level scope
# for an action (EC2 networking, EKS/MSK/SageMaker creates, describes) the resource is "*". Shape, not
# sufficiency, is verified here (moto enforces no IAM): a missing action shows on the first real apply.

data "aws_iam_policy_document" "operator_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [local.account_arn]
    }
  }
}

resource "aws_iam_role" "terraform_apply" {
  name                 = var.terraform_apply_role_name
  assume_role_policy   = data.aws_iam_policy_document.operator_trust.json
  max_session_duration = 3600
}

locals {
  terraform_statements = {
    StateObjects = {
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = [for key in var.tf_state_keys : "${local.bucket_arns["tfstate"]}/${key}"]
    }
    StateLock = {
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateContinuousBackups", "dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTimeToLive", "dynamodb:TagResource", "dynamodb:ListTagsOfResource"]
      resources = ["arn:aws:dynamodb:${var.aws_region}:${var.aws_account_id}:table/${var.tf_lock_table}"]
    }
    Buckets = {
      actions = [
        "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation",
        "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:GetBucketAcl", "s3:GetBucketCORS",
        "s3:GetBucketWebsite", "s3:GetBucketLogging", "s3:GetBucketRequestPayment", "s3:GetBucketObjectLockConfiguration",
        "s3:GetAccelerateConfiguration", "s3:GetReplicationConfiguration", "s3:GetBucketTagging", "s3:PutBucketTagging",
        "s3:GetBucketVersioning", "s3:PutBucketVersioning", "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
        "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock", "s3:GetBucketOwnershipControls", "s3:PutBucketOwnershipControls",
      ]
      resources = values(local.bucket_arns)
    }
    Roles = {
      actions = [
        "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:TagRole", "iam:UntagRole",
        "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy",
        "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:PassRole",
        "iam:AttachRolePolicy", "iam:DetachRolePolicy",
      ]
      resources = [local.project_arn]
    }
    ServiceLinkedRoles = { # first use of EKS, its node groups, RDS, Auto Scaling and MSK in the account
      actions   = ["iam:CreateServiceLinkedRole", "iam:GetRole"]
      resources = [for svc in ["eks.amazonaws.com", "eks-nodegroup.amazonaws.com", "rds.amazonaws.com", "autoscaling.amazonaws.com", "kafka.amazonaws.com"] : "arn:aws:iam::${var.aws_account_id}:role/aws-service-role/${svc}/*"]
    }
    FinalSnapshot = { # data_ml's destroy writes Aurora's final snapshot
      actions   = ["rds:CreateDBClusterSnapshot", "rds:DescribeDBClusterSnapshots", "rds:AddTagsToResource"]
      resources = ["arn:aws:rds:${var.aws_region}:${var.aws_account_id}:cluster-snapshot:${local.name_prefix}-*", "arn:aws:rds:${var.aws_region}:${var.aws_account_id}:cluster:${local.name_prefix}-*"]
    }
    OidcProvider = {
      actions   = ["iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:GetOpenIDConnectProvider", "iam:TagOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint"]
      resources = ["arn:aws:iam::${var.aws_account_id}:oidc-provider/oidc.eks.${var.aws_region}.amazonaws.com/id/*"]
    }
    Key = {
      actions   = ["kms:CreateKey", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation", "kms:ListResourceTags", "kms:TagResource", "kms:ScheduleKeyDeletion", "kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ListAliases"]
      resources = ["*"] # the key's ARN exists only after CreateKey
    }
    Repository = {
      actions = [
        "ecr:CreateRepository", "ecr:DeleteRepository", "ecr:DescribeRepositories", "ecr:ListTagsForResource",
        "ecr:TagResource", "ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy", "ecr:DeleteLifecyclePolicy",
        "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability",
      ]
      resources = [local.ecr_arn]
    }
    Network = { # EC2 creates have no resource-level scope before the resource exists
      actions   = ["ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute", "ec2:DescribeVpcs", "ec2:DescribeVpcAttribute", "ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:DescribeSubnets", "ec2:CreateRouteTable", "ec2:DeleteRouteTable", "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable", "ec2:DescribeRouteTables", "ec2:CreateVpcEndpoint", "ec2:DeleteVpcEndpoints", "ec2:ModifyVpcEndpoint", "ec2:DescribeVpcEndpoints", "ec2:DescribePrefixLists", "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:CreateLaunchTemplate", "ec2:CreateLaunchTemplateVersion", "ec2:DeleteLaunchTemplate", "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions", "ec2:RunInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeAvailabilityZones", "ec2:CreateTags", "ec2:DeleteTags"]
      resources = ["*"]
    }
    Runtime = {
      actions   = ["eks:CreateCluster", "eks:DeleteCluster", "eks:DescribeCluster", "eks:UpdateClusterConfig", "eks:UpdateClusterVersion", "eks:CreateNodegroup", "eks:DeleteNodegroup", "eks:DescribeNodegroup", "eks:UpdateNodegroupConfig", "eks:UpdateNodegroupVersion", "eks:CreateAccessEntry", "eks:DeleteAccessEntry", "eks:DescribeAccessEntry", "eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy", "eks:ListAssociatedAccessPolicies", "eks:CreateAddon", "eks:DeleteAddon", "eks:DescribeAddon", "eks:DescribeAddonVersions", "eks:TagResource", "eks:ListTagsForResource"]
      resources = [local.eks_arn, "arn:aws:eks:${var.aws_region}:${var.aws_account_id}:nodegroup/${var.eks_cluster_name}/*", "arn:aws:eks:${var.aws_region}:${var.aws_account_id}:access-entry/${var.eks_cluster_name}/*", "arn:aws:eks:${var.aws_region}:${var.aws_account_id}:addon/${var.eks_cluster_name}/*"]
    }
    Streaming = {
      actions   = ["kafka:CreateClusterV2", "kafka:DeleteCluster", "kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers", "kafka:ListClustersV2", "kafka:TagResource", "kafka:UntagResource", "kafka:ListTagsForResource"]
      resources = ["*"] # MSK cluster ARNs carry a UUID known only after create
    }
    Database = {
      actions   = ["rds:CreateDBCluster", "rds:DeleteDBCluster", "rds:ModifyDBCluster", "rds:DescribeDBClusters", "rds:CreateDBInstance", "rds:DeleteDBInstance", "rds:ModifyDBInstance", "rds:DescribeDBInstances", "rds:CreateDBClusterParameterGroup", "rds:DeleteDBClusterParameterGroup", "rds:ModifyDBClusterParameterGroup", "rds:DescribeDBClusterParameterGroups", "rds:DescribeDBClusterParameters", "rds:CreateDBSubnetGroup", "rds:DeleteDBSubnetGroup", "rds:DescribeDBSubnetGroups", "rds:AddTagsToResource", "rds:ListTagsForResource"]
      resources = ["arn:aws:rds:${var.aws_region}:${var.aws_account_id}:cluster:${local.name_prefix}-*", "arn:aws:rds:${var.aws_region}:${var.aws_account_id}:db:${local.name_prefix}-*", "arn:aws:rds:${var.aws_region}:${var.aws_account_id}:cluster-pg:${local.name_prefix}-*", "arn:aws:rds:${var.aws_region}:${var.aws_account_id}:subgrp:${local.name_prefix}-*"]
    }
    Learning = {
      actions   = ["glue:CreateDatabase", "glue:DeleteDatabase", "glue:GetDatabase", "glue:UpdateDatabase", "glue:GetTags", "glue:TagResource"]
      resources = ["arn:aws:glue:${var.aws_region}:${var.aws_account_id}:catalog", "arn:aws:glue:${var.aws_region}:${var.aws_account_id}:database/*"]
    }
    Parameters = {
      actions   = ["ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:DeleteParameter", "ssm:AddTagsToResource", "ssm:ListTagsForResource", "ssm:DescribeParameters"]
      resources = ["${local.ssm_arn}${trimsuffix(var.ssm_prefix, "/")}/*"]
    }
    Observability = {
      actions   = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:AssociateKmsKey", "logs:TagResource", "logs:ListTagsForResource", "logs:DescribeLogGroups", "budgets:ViewBudget", "budgets:ModifyBudget", "budgets:ListTagsForResource", "budgets:TagResource"]
      resources = ["arn:aws:logs:${var.aws_region}:${var.aws_account_id}:log-group:*", "arn:aws:budgets::${var.aws_account_id}:budget/${local.name_prefix}-*"]
    }
  }
}

data "aws_iam_policy_document" "terraform_apply" {
  dynamic "statement" {
    for_each = local.terraform_statements
    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "terraform_apply" {
  name   = "${var.terraform_apply_role_name}-access"
  role   = aws_iam_role.terraform_apply.id
  policy = data.aws_iam_policy_document.terraform_apply.json
}
