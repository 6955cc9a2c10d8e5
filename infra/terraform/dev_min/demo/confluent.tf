# Confluent Cloud for the demo (spec DA §8.7). The only file of this stack that needs the Confluent
# provider: the infra tests validate and plan the stack without it, since that provider is not on the
# build machine (docs/decisions.md D9). Credentials come from CONFLUENT_CLOUD_API_KEY/_SECRET.
terraform {
  required_providers {
    confluent = {
      source  = "confluentinc/confluent"
      version = "~> 2.0"
    }
  }
}

provider "confluent" {}

variable "confluent" {
  description = "Rendered into confluent.auto.tfvars.json from the handles (see modules/confluent)."
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
}

module "confluent" {
  source = "../../modules/confluent"

  confluent = var.confluent
  ssm_paths = {
    for k in ["confluent_bootstrap", "confluent_api_key", "confluent_api_secret"] : k => var.ssm_paths[k]
  }
}

output "kafka_cluster_id" {
  description = "The demo Kafka cluster's id."
  value       = module.confluent.cluster_id
}

output "kafka_bootstrap" {
  description = "Kafka bootstrap (host:port)."
  value       = module.confluent.bootstrap_endpoint
  sensitive   = true
}
