# The $300 monthly cap on the whole AWS bill (no cost filter: streaming, runtime and data services included)
# with an alert at $120, $210 and $270 (DA-full §5.2.1-3, App. B). Alert-3 stops phase advancement: the
# platform's cost gate reads this budget (DA-full §5.2.3); Terraform only makes it exist (§15.1.4).
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
