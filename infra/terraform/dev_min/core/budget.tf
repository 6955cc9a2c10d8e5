# The monthly cost cap with an alert at each threshold (spec DA §5.2.3, App. B.4, §15.1.3).
resource "aws_budgets_budget" "monthly" {
  name         = var.budget.name
  budget_type  = "COST"
  limit_amount = tostring(var.budget.limit_amount)
  limit_unit   = var.budget.currency
  time_unit    = "MONTHLY"

  dynamic "notification" {
    for_each = var.budget.alert_thresholds
    content {
      comparison_operator        = "GREATER_THAN"
      threshold                  = notification.value
      threshold_type             = "ABSOLUTE_VALUE"
      notification_type          = "ACTUAL"
      subscriber_email_addresses = var.budget_alert_emails
    }
  }
}
