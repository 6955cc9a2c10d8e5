# The OpenTelemetry collector's configuration (DA-full §5.1.13, §11.1): OTLP in (OTEL_EXPORTER_OTLP_ENDPOINT),
# metrics to CloudWatch as EMF, logs and traces' run correlation kept as resource attributes. The collector
# (ADOT image, in the obs_gov namespace under ROLE_EKS_RUNTIME_PLATFORM_BASE) reads it from SSM at start.
locals {
  otel_config = templatefile("${path.module}/otel-collector.yaml.tftpl", {
    region            = var.aws_region
    env               = var.env
    log_group         = var.otel.log_group
    metrics_namespace = var.otel.metrics_namespace
    otlp_port         = regex(":([0-9]+)$", var.otel.endpoint)[0]
  })
}

resource "aws_ssm_parameter" "otel_collector_config" {
  name   = var.ssm_paths["otel_collector_config"]
  type   = "SecureString"
  tier   = length(local.otel_config) > 4096 ? "Advanced" : "Standard"
  key_id = var.core.kms_key_arn
  value  = local.otel_config
}

output "otel_collector_config" {
  description = "The rendered collector configuration (no secrets in it)."
  value       = local.otel_config
}
