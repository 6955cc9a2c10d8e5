variable "confluent" {
  description = "CONFLUENT_* handles, KAFKA_TOPIC_CLEANUP_POLICY, the consumer group prefix and every FP_BUS_* topic (name → partitions, retention_ms)."
  type = object({
    environment_name      = string
    cluster_name          = string
    cluster_type          = string
    cloud                 = string
    region                = string
    service_account_name  = string
    cleanup_policy        = string
    consumer_group_prefix = string
    topics = map(object({
      partitions   = number
      retention_ms = number
    }))
  })

  validation {
    condition     = var.confluent.cluster_type == "BASIC"
    error_message = "dev_min runs a Basic cluster (run-process App. D.1)."
  }
}

variable "ssm_paths" {
  description = "SSM_CONFLUENT_BOOTSTRAP_PATH, SSM_CONFLUENT_API_KEY_PATH and SSM_CONFLUENT_API_SECRET_PATH by short name."
  type        = map(string)
}
