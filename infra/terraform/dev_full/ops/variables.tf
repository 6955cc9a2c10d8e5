variable "log_groups" {
  description = "CloudWatch log groups by short name → name (CLOUDWATCH_LOG_GROUP_PREFIX + CLOUDWATCH_LOG_GROUPS, and EKS's control-plane group)."
  type        = map(string)
}

variable "log_retention_days" {
  description = "RETENTION_CLOUDWATCH_LOGS_DAYS (DA-full §14.3: 14)."
  type        = number
}

variable "budget" {
  description = "AWS_BUDGET_NAME, the limit and the three alerts (DA-full §5.2, App. B)."
  type = object({
    name             = string
    limit_amount     = number
    currency         = string
    alert_thresholds = list(number)
  })

  validation {
    condition     = length(var.budget.alert_thresholds) == 3 && alltrue([for t in var.budget.alert_thresholds : t < var.budget.limit_amount])
    error_message = "Three alerts below the limit (DA-full §5.2.2)."
  }
}

variable "otel" {
  description = "The OpenTelemetry collector: OTEL_EXPORTER_OTLP_ENDPOINT, its log group and metrics namespace."
  type = object({
    endpoint          = string
    log_group         = string
    metrics_namespace = string
  })
}

variable "budget_alert_emails" {
  description = "Operator-set: who receives the budget alerts."
  type        = list(string)

  validation {
    condition     = length(var.budget_alert_emails) > 0
    error_message = "At least one budget alert recipient."
  }
}
