# One IAM role per workload (ROLE_* handles), assumable only by its ServiceAccount in its namespace through
# the cluster's OIDC provider (DA-full §9.2, §10.2). Policies list their actions; resources are this
# project's buckets, parameters, topics and groups.

locals {
  oidc_host   = replace(aws_iam_openid_connect_provider.eks.url, "https://", "")
  role_arns   = { for k, v in var.irsa : k => "arn:aws:iam::${var.aws_account_id}:role/${v.role_name}" }
  kafka_topic = "${local.msk_arn}:topic/${var.msk_cluster_name}/*"
  kafka_group = "${local.msk_arn}:group/${var.msk_cluster_name}/*"
  uses_bus    = { for k, g in local.grants : k => length(g.groups) > 0 || length(g.topic_write) > 0 }
}

data "aws_iam_policy_document" "irsa_trust" {
  for_each = var.irsa

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["system:serviceaccount:${each.value.namespace}:${each.value.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = var.irsa

  name               = each.value.role_name
  assume_role_policy = data.aws_iam_policy_document.irsa_trust[each.key].json
}

data "aws_iam_policy_document" "irsa" {
  for_each = local.grants

  dynamic "statement" {
    for_each = length(concat(each.value.s3_read, each.value.s3_write)) == 0 ? [] : [1]
    content {
      sid       = "ListOwnBuckets"
      actions   = ["s3:ListBucket"]
      resources = [for b in distinct(concat(each.value.s3_read, each.value.s3_write)) : local.bucket_arns[b]]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.s3_read) == 0 ? [] : [1]
    content {
      sid       = "ReadObjects"
      actions   = ["s3:GetObject"]
      resources = [for b in each.value.s3_read : "${local.bucket_arns[b]}/*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.s3_write) == 0 ? [] : [1]
    content {
      sid       = "AppendObjects"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
      resources = [for b in each.value.s3_write : "${local.bucket_arns[b]}/*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.ssm) == 0 ? [] : [1]
    content {
      sid       = "ReadParameters"
      actions   = ["ssm:GetParameter", "ssm:GetParameters"]
      resources = [for p in each.value.ssm : local.ssm_arns[p]]
    }
  }

  # SSE-KMS objects and SecureStrings are under the platform key
  statement {
    sid       = "UsePlatformKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.core.kms_key_arn]
  }

  dynamic "statement" {
    for_each = local.uses_bus[each.key] ? [1] : []
    content {
      sid       = "ConnectToBus"
      actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
      resources = ["${local.msk_arn}:cluster/${var.msk_cluster_name}/*"]
    }
  }

  dynamic "statement" {
    for_each = local.uses_bus[each.key] ? [1] : []
    content {
      sid       = "ReadTopics"
      actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
      resources = [for t in var.topics : "${local.kafka_topic}/${t}"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.topic_write) == 0 ? [] : [1]
    content {
      sid       = "IdempotentProducer" # enable.idempotence: no duplicate on a producer retry
      actions   = ["kafka-cluster:WriteDataIdempotently"]
      resources = ["${local.msk_arn}:cluster/${var.msk_cluster_name}/*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.topic_write) == 0 ? [] : [1]
    content {
      sid       = "WriteOwnTopics"
      actions   = ["kafka-cluster:WriteData"]
      resources = [for t in each.value.topic_write : "${local.kafka_topic}/${t}"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.groups) == 0 ? [] : [1]
    content {
      sid       = "OwnConsumerGroups"
      actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
      resources = [for g in each.value.groups : "${local.kafka_group}/${var.consumer_group_prefix}${g}*"]
    }
  }

  dynamic "statement" {
    for_each = contains(local.launches_workloads, each.key) ? [1] : []
    content {
      sid       = "CreateTopics" # bus.ensure_topics with the pinned partitions and retention (P0)
      actions   = ["kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:AlterTopicDynamicConfiguration"]
      resources = [for t in var.topics : "${local.kafka_topic}/${t}"]
    }
  }

  dynamic "statement" {
    for_each = contains(local.launches_workloads, each.key) ? [1] : []
    content {
      sid       = "DescribeCluster" # the K8s run launcher and the pack supervisor reach the API through it
      actions   = ["eks:DescribeCluster"]
      resources = [local.eks_arn]
    }
  }

  dynamic "statement" {
    for_each = contains(local.launches_workloads, each.key) ? [1] : []
    content {
      sid = "SageMakerJobs" # P14 training, P15 batch transform, the one endpoint (SM_ENDPOINT_COUNT_V0)
      actions = [
        "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
        "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
        "sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel",
        "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig", "sagemaker:DeleteEndpointConfig",
        "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint",
        "sagemaker:AddTags",
      ]
      resources = [
        "arn:aws:sagemaker:${var.aws_region}:${var.aws_account_id}:training-job/${local.name_prefix}-*",
        "arn:aws:sagemaker:${var.aws_region}:${var.aws_account_id}:transform-job/${local.name_prefix}-*",
        "arn:aws:sagemaker:${var.aws_region}:${var.aws_account_id}:model/${local.name_prefix}-*",
        "arn:aws:sagemaker:${var.aws_region}:${var.aws_account_id}:endpoint-config/${local.name_prefix}-*",
        "arn:aws:sagemaker:${var.aws_region}:${var.aws_account_id}:endpoint/${var.sagemaker_endpoint_name}",
      ]
    }
  }

  dynamic "statement" {
    for_each = contains(local.launches_workloads, each.key) ? [1] : []
    content {
      sid       = "PassSageMakerRole"
      actions   = ["iam:PassRole"]
      resources = ["arn:aws:iam::${var.aws_account_id}:role/${var.sagemaker_execution_role_name}"]
      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["sagemaker.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = contains(local.invokes_endpoint, each.key) ? [1] : []
    content {
      sid       = "ScoreOnEndpoint"
      actions   = ["sagemaker:InvokeEndpoint"]
      resources = ["arn:aws:sagemaker:${var.aws_region}:${var.aws_account_id}:endpoint/${var.sagemaker_endpoint_name}"]
    }
  }

  dynamic "statement" {
    for_each = contains(local.writes_catalog, each.key) ? [1] : []
    content {
      sid       = "IcebergTables"
      actions   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"]
      resources = ["arn:aws:glue:${var.aws_region}:${var.aws_account_id}:catalog", "arn:aws:glue:${var.aws_region}:${var.aws_account_id}:database/${var.iceberg_database}", "arn:aws:glue:${var.aws_region}:${var.aws_account_id}:table/${var.iceberg_database}/*"]
    }
  }

  dynamic "statement" {
    for_each = contains(local.writes_telemetry, each.key) ? [1] : []
    content {
      sid       = "CollectorLogs"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      resources = ["arn:aws:logs:${var.aws_region}:${var.aws_account_id}:log-group:${var.log_group_prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = contains(local.writes_telemetry, each.key) ? [1] : []
    content {
      sid       = "CollectorMetrics"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"] # PutMetricData has no resource-level scope: the namespace condition scopes it
      condition {
        test     = "StringLike"
        variable = "cloudwatch:namespace"
        values   = ["FraudPlatform/*"]
      }
    }
  }
}

resource "aws_iam_role_policy" "irsa" {
  for_each = local.grants

  name   = "${var.irsa[each.key].role_name}-access"
  role   = aws_iam_role.irsa[each.key].id
  policy = data.aws_iam_policy_document.irsa[each.key].json
}

# The orchestrator's role may edit the platform's namespaces when it authenticates with IAM (an operator-run
# Dagster or `aws eks get-token`); inside the cluster its ServiceAccount's RBAC applies (issue 24 item 2).
resource "aws_eks_access_entry" "orchestrator" {
  cluster_name  = aws_eks_cluster.platform.name
  principal_arn = aws_iam_role.irsa["dagster_orchestrator"].arn
}

resource "aws_eks_access_policy_association" "orchestrator" {
  cluster_name  = aws_eks_cluster.platform.name
  principal_arn = aws_iam_role.irsa["dagster_orchestrator"].arn
  policy_arn    = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"

  access_scope {
    type       = "namespace"
    namespaces = distinct([for v in var.irsa : v.namespace])
  }

  depends_on = [aws_eks_access_entry.orchestrator]
}
