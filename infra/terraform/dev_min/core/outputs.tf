# What the demo stack and the run's handles need from core (nothing here is secret).
output "bucket_names" {
  description = "Rendered bucket names (stem-account-region) by short name, tfstate included."
  value       = local.all_buckets
}

output "tf_state_bucket" {
  description = "The remote-state bucket (backend config of both stacks)."
  value       = aws_s3_bucket.this["tfstate"].bucket
}

output "tf_lock_table" {
  description = "The remote-state lock table."
  value       = aws_dynamodb_table.tf_lock.name
}

output "ecr_repository_url" {
  description = "Where P(-1) pushes the platform image."
  value       = aws_ecr_repository.platform.repository_url
}

output "role_arns" {
  description = "IAM role ARNs by short name."
  value       = merge({ for k, r in aws_iam_role.runtime : k => r.arn }, { ecs_task_execution = aws_iam_role.ecs_task_execution.arn, terraform_apply = aws_iam_role.terraform_apply.arn, ecr_push = aws_iam_role.ecr_push.arn })
}

output "ecr_push_role_arn" {
  description = "The image workflow's push role: set it as the repository variable FP_ECR_PUSH_ROLE_ARN."
  value       = aws_iam_role.ecr_push.arn
}

output "log_groups" {
  description = "CloudWatch log group names by short name."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}
