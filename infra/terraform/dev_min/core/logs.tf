# Log groups for the demo's ECS tasks, kept in core so a demo destroy never loses the last logs before
# retention ends; retention is short (spec DA §11.5, §14.4). Empty groups cost nothing.
resource "aws_cloudwatch_log_group" "this" {
  for_each = var.log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
}
