# The EKS cluster for the differentiating custom services (DA-full §5.1.8, §9.2): private subnets, the API
# reachable privately and from the operator's addresses only, secrets encrypted with the platform key,
# every control-plane log type to the group ops created (retention 14 days), access by EKS access entries.

data "aws_iam_policy_document" "eks_trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${local.name_prefix}-eks-cluster"
  assume_role_policy = data.aws_iam_policy_document.eks_trust.json
}

# The service role's AWS-managed policy: what the EKS control plane itself calls (ENIs, describes).
resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_eks_cluster" "platform" {
  #checkov:skip=CKV_AWS_39:the operator reaches the API from operator_cidrs only (no VPN/bastion in v0); DA-full §9.1 explicit ingress where required
  #checkov:skip=CKV_AWS_38:public_access_cidrs is var.operator_cidrs, validated to exclude 0.0.0.0/0; DA-full §9.1
  name     = var.eks_cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids              = var.core.private_subnet_ids
    security_group_ids      = [var.core.sg_app_id]
    endpoint_private_access = true
    endpoint_public_access  = true
    public_access_cidrs     = var.operator_cidrs
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = var.core.kms_key_arn
    }
  }

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true # the operator role that applies (ROLE_TERRAFORM_APPLY_DEV_FULL)
  }

  depends_on = [aws_iam_role_policy_attachment.cluster]
}

# --- nodes: ROLE_EKS_NODEGROUP_DEV_FULL with listed actions (not the AWS-managed node policies)
data "aws_iam_policy_document" "ec2_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = var.node_role_name
  assume_role_policy = data.aws_iam_policy_document.ec2_trust.json
}

data "aws_iam_policy_document" "node" {
  statement {
    sid       = "NodeAndCniDescribe" # kubelet and the VPC CNI; describes have no resource-level scope
    actions   = ["ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVolumes", "ec2:DescribeVpcs", "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags"]
    resources = ["*"]
  }
  statement {
    sid       = "CniInterfaces" # the VPC CNI manages pod addresses on the node's interfaces in this VPC
    actions   = ["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses", "ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute"]
    resources = ["arn:aws:ec2:${var.aws_region}:${var.aws_account_id}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = ["arn:aws:ec2:${var.aws_region}:${var.aws_account_id}:vpc/${var.core.vpc_id}"]
    }
  }
  statement {
    sid       = "CniTagInterfaces"
    actions   = ["ec2:CreateTags"]
    resources = ["arn:aws:ec2:${var.aws_region}:${var.aws_account_id}:network-interface/*"]
  }
  statement {
    sid       = "JoinCluster"
    actions   = ["eks:DescribeCluster"]
    resources = [local.eks_arn]
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
    sid       = "PullEksAddonImages" # VPC CNI, kube-proxy, CoreDNS come from EKS's regional registry account
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = ["arn:aws:ecr:${var.aws_region}:${var.eks_addon_registry_account}:repository/*"]
  }
}

resource "aws_iam_role_policy" "node" {
  name   = "${var.node_role_name}-access"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}

# IMDSv2 only, one hop: pods cannot borrow the node role (they get theirs through IRSA). Volumes are encrypted
# with the AWS-managed EBS key: the platform key would need a key-policy grant to the Auto Scaling
# service-linked role, which may not exist when core is applied.
resource "aws_launch_template" "node" {
  name                   = "${local.name_prefix}-node"
  vpc_security_group_ids = [aws_eks_cluster.platform.vpc_config[0].cluster_security_group_id, var.core.sg_app_id]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.node_disk_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.tags
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.tags
  }
}

resource "aws_eks_node_group" "platform" {
  cluster_name    = aws_eks_cluster.platform.name
  node_group_name = "${local.name_prefix}-default"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.core.private_subnet_ids
  instance_types  = var.node_instance_types
  ami_type        = "AL2023_x86_64_STANDARD"
  capacity_type   = "ON_DEMAND"

  scaling_config {
    min_size     = var.node_scaling.min
    desired_size = var.node_scaling.desired
    max_size     = var.node_scaling.max
  }

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  update_config {
    max_unavailable = 1
  }

  depends_on = [aws_iam_role_policy.node, aws_vpc_endpoint.interface]
}

# --- IRSA: the cluster's OIDC issuer as an IAM identity provider (AWS fetches its thumbprint)
resource "aws_iam_openid_connect_provider" "eks" {
  url            = aws_eks_cluster.platform.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
}

output "runtime" {
  description = "The cluster, its OIDC provider and the workload roles by ServiceAccount."
  value = {
    cluster_name      = aws_eks_cluster.platform.name
    cluster_endpoint  = aws_eks_cluster.platform.endpoint
    oidc_provider_arn = aws_iam_openid_connect_provider.eks.arn
    service_accounts  = { for k, v in var.irsa : "${v.namespace}/${v.service_account}" => aws_iam_role.irsa[k].arn }
  }
}
