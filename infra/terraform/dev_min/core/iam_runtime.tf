# Runtime roles: one per writer boundary, assumed only by ECS tasks of this account (App. C.2, C.3).

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.aws_account_id]
    }
  }
}

resource "aws_iam_role" "runtime" {
  for_each = local.grants

  name               = var.role_names[each.key]
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

data "aws_iam_policy_document" "runtime" {
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
      resources = [for p in each.value.ssm : "${local.ssm_arn}${var.ssm_paths[p]}"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "dagster_orchestrator" ? [1] : []
    content {
      sid       = "RunTasksOfThisStack"
      actions   = ["ecs:RunTask"]
      resources = ["${local.ecs_arn}:task-definition/${var.project_slug}-*"]
      condition {
        test     = "ArnEquals"
        variable = "ecs:cluster"
        values   = ["${local.ecs_arn}:cluster/${var.ecs_cluster_name}"]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "dagster_orchestrator" ? [1] : []
    content {
      sid       = "SuperviseTasksAndServices"
      actions   = ["ecs:DescribeTasks", "ecs:StopTask", "ecs:DescribeServices", "ecs:UpdateService"]
      resources = ["${local.ecs_arn}:task/${var.ecs_cluster_name}/*", "${local.ecs_arn}:service/${var.ecs_cluster_name}/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "dagster_orchestrator" ? [1] : []
    content {
      sid       = "TagLaunchedTasks" # the run launcher tags each task with its run
      actions   = ["ecs:TagResource"]
      resources = ["${local.ecs_arn}:task/${var.ecs_cluster_name}/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "dagster_orchestrator" ? [1] : []
    content {
      sid       = "DescribeWithoutResourceScope" # these calls accept no resource-level scope
      actions   = ["ecs:DescribeTaskDefinition", "ecs:ListTasks", "ec2:DescribeNetworkInterfaces"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "dagster_orchestrator" ? [1] : []
    content {
      sid       = "ReadTaskLogs" # Pipes relays a job's logs
      actions   = ["logs:GetLogEvents", "logs:FilterLogEvents"]
      resources = [for arn in values(local.log_group_arn) : "${arn}:*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "dagster_orchestrator" ? [1] : []
    content {
      sid     = "ResolveImageDigest" # P(-1): the registry digest of git-<sha> (operate/packaging.py)
      actions = ["ecr:DescribeImages"]
      # built from known values, not the repository's computed ARN: every runtime policy stays known at plan
      resources = ["arn:aws:ecr:${var.aws_region}:${var.aws_account_id}:repository/${var.ecr_repo_name}"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "dagster_orchestrator" ? [1] : []
    content {
      sid     = "PassTaskRoles"
      actions = ["iam:PassRole"]
      resources = concat(
        [for k in keys(local.grants) : local.role_arns[k] if k != "dagster_orchestrator"],
        [local.role_arns["ecs_task_execution"]],
      )
      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["ecs-tasks.amazonaws.com"]
      }
    }
  }

  # db_migrations has no AWS rights but its database credentials; a role needs one statement.
  statement {
    sid       = "ReadOwnRole"
    actions   = ["iam:GetRole"]
    resources = [local.role_arns[each.key]]
  }
}

resource "aws_iam_role_policy" "runtime" {
  for_each = local.grants

  name   = "${var.role_names[each.key]}-access"
  role   = aws_iam_role.runtime[each.key].id
  policy = data.aws_iam_policy_document.runtime[each.key].json
}

# The ECS execution role: pull the image, write logs; no application data (App. C.2).
resource "aws_iam_role" "ecs_task_execution" {
  name               = var.role_names["ecs_task_execution"]
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

data "aws_iam_policy_document" "ecs_task_execution" {
  statement {
    sid       = "EcrLogin" # GetAuthorizationToken has no resource-level scope
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullPlatformImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.platform.arn]
  }
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for arn in values(local.log_group_arn) : "${arn}:*"]
  }
}

resource "aws_iam_role_policy" "ecs_task_execution" {
  name   = "${var.role_names["ecs_task_execution"]}-access"
  role   = aws_iam_role.ecs_task_execution.id
  policy = data.aws_iam_policy_document.ecs_task_execution.json
}
