# Log groups of the packs, Dagster, the learning jobs, the OTel collector and the EKS control plane (created
# here before the cluster so EKS does not create it without retention), retention 14 days (DA-full §14.3),
# encrypted with the platform key. In ops, not runtime: a runtime destroy keeps the last logs.
resource "aws_cloudwatch_log_group" "this" {
  for_each = var.log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = var.core.kms_key_arn
}
