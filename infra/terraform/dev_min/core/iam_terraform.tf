# ROLE_TERRAFORM_APPLY: the operator/CI identity that applies core and demo (App. C.2); never used at
# run time. Actions are listed one by one (no wildcards, spec DA §9.5); where AWS offers no
# resource-level scope for an action (EC2 networking, describes) the resource is "*".
# Not verified against a real account on this machine (moto does not enforce IAM): a missing action
# shows up as an AccessDenied on the first real apply (docs/decisions.md D9).

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
  name                 = var.role_names["terraform_apply"]
  assume_role_policy   = data.aws_iam_policy_document.operator_trust.json
  max_session_duration = 3600
}

locals {
  project_buckets = [for name in values(local.all_buckets) : "arn:aws:s3:::${name}"]
  project_roles   = [for name in values(var.role_names) : "arn:aws:iam::${var.aws_account_id}:role/${name}"]

  terraform_statements = {
    StateObjects = {
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = [for key in var.tf_state_keys : "arn:aws:s3:::${local.state_bucket}/${key}"]
    }
    StateLock = {
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateContinuousBackups", "dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTimeToLive", "dynamodb:TagResource", "dynamodb:UntagResource", "dynamodb:ListTagsOfResource"]
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
      resources = local.project_buckets
    }
    Roles = {
      actions = [
        "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:TagRole", "iam:UntagRole",
        "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy",
        "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:PassRole",
      ]
      resources = local.project_roles
    }
    Repository = {
      actions = [
        "ecr:CreateRepository", "ecr:DeleteRepository", "ecr:DescribeRepositories", "ecr:ListTagsForResource",
        "ecr:TagResource", "ecr:UntagResource", "ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy",
        "ecr:DeleteLifecyclePolicy", "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability",
      ]
      resources = ["arn:aws:ecr:${var.aws_region}:${var.aws_account_id}:repository/${var.ecr_repo_name}"]
    }
    OidcProvider = { # GitHub's OIDC provider for the image workflow's push role (github_oidc.tf)
      actions   = ["iam:CreateOpenIDConnectProvider", "iam:GetOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint", "iam:AddClientIDToOpenIDConnectProvider", "iam:RemoveClientIDFromOpenIDConnectProvider"]
      resources = [local.github_oidc_arn]
    }
    LogGroups = {
      actions   = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:TagResource", "logs:UntagResource", "logs:ListTagsForResource"]
      resources = [for arn in values(local.log_group_arn) : "${arn}:*"]
    }
    Describes = { # describe/list calls without resource-level scope
      actions   = ["logs:DescribeLogGroups", "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeInternetGateways", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:DescribeNetworkAcls", "ec2:DescribeVpcAttribute", "ec2:DescribeAvailabilityZones", "ec2:DescribeNetworkInterfaces", "ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "rds:DescribeDBInstances", "rds:DescribeDBParameterGroups", "rds:DescribeDBParameters", "rds:DescribeDBSubnetGroups", "ssm:DescribeParameters", "servicediscovery:GetOperation", "route53:CreateHostedZone", "route53:GetHostedZone", "route53:DeleteHostedZone", "route53:GetChange", "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"]
      resources = ["*"]
    }
    Budget = {
      actions   = ["budgets:ViewBudget", "budgets:ModifyBudget", "budgets:ListTagsForResource", "budgets:TagResource"]
      resources = ["arn:aws:budgets::${var.aws_account_id}:budget/${var.budget.name}"]
    }
    DemoNetwork = { # the demo VPC; creates have no resource-level scope before the resource exists
      actions   = ["ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute", "ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:ModifySubnetAttribute", "ec2:CreateInternetGateway", "ec2:DeleteInternetGateway", "ec2:AttachInternetGateway", "ec2:DetachInternetGateway", "ec2:CreateRouteTable", "ec2:DeleteRouteTable", "ec2:CreateRoute", "ec2:DeleteRoute", "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable", "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:CreateTags", "ec2:DeleteTags"]
      resources = ["*"]
    }
    DemoCompute = {
      actions   = ["ecs:CreateCluster", "ecs:DeleteCluster", "ecs:DescribeClusters", "ecs:PutClusterCapacityProviders", "ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService", "ecs:DescribeServices", "ecs:TagResource", "ecs:UntagResource", "ecs:ListTagsForResource", "servicediscovery:CreatePrivateDnsNamespace", "servicediscovery:DeleteNamespace", "servicediscovery:GetNamespace", "servicediscovery:CreateService", "servicediscovery:DeleteService", "servicediscovery:GetService", "servicediscovery:TagResource", "servicediscovery:ListTagsForResource"]
      resources = ["${local.ecs_arn}:cluster/${var.ecs_cluster_name}", "${local.ecs_arn}:service/${var.ecs_cluster_name}/*", "arn:aws:servicediscovery:${var.aws_region}:${var.aws_account_id}:namespace/*", "arn:aws:servicediscovery:${var.aws_region}:${var.aws_account_id}:service/*"]
    }
    DemoDatabase = {
      actions   = ["rds:CreateDBInstance", "rds:DeleteDBInstance", "rds:ModifyDBInstance", "rds:CreateDBParameterGroup", "rds:DeleteDBParameterGroup", "rds:ModifyDBParameterGroup", "rds:CreateDBSubnetGroup", "rds:DeleteDBSubnetGroup", "rds:AddTagsToResource", "rds:RemoveTagsFromResource", "rds:ListTagsForResource"]
      resources = ["arn:aws:rds:${var.aws_region}:${var.aws_account_id}:db:*", "arn:aws:rds:${var.aws_region}:${var.aws_account_id}:pg:*", "arn:aws:rds:${var.aws_region}:${var.aws_account_id}:subgrp:*"]
    }
    DemoParameters = {
      actions   = ["ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:DeleteParameter", "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource", "ssm:ListTagsForResource"]
      resources = ["${local.ssm_arn}${trimsuffix(var.ssm_prefix, "/")}/*"]
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
  name   = "${var.role_names["terraform_apply"]}-access"
  role   = aws_iam_role.terraform_apply.id
  policy = data.aws_iam_policy_document.terraform_apply.json
}
