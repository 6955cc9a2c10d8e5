# Environment, Basic cluster, the registry's topics, one runtime service account (spec DA §9.4: one
# identity for the demo) with prefixed ACLs, and its API key written to SSM SecureString (DA §8.5).
# Replication factor is never set: Confluent's default (3) applies (KAFKA_TOPIC_REPLICATION_FACTOR).

resource "confluent_environment" "demo" {
  display_name = var.confluent.environment_name
}

resource "confluent_kafka_cluster" "demo" {
  display_name = var.confluent.cluster_name
  availability = "SINGLE_ZONE"
  cloud        = var.confluent.cloud
  region       = var.confluent.region
  basic {}

  environment {
    id = confluent_environment.demo.id
  }
}

# Terraform's own identity on the cluster (creates topics and ACLs); the runtime never gets its key.
resource "confluent_service_account" "manager" {
  display_name = "${var.confluent.service_account_name}-manager"
  description  = "Terraform: topics and ACLs of the demo cluster"
}

resource "confluent_role_binding" "manager" {
  principal   = "User:${confluent_service_account.manager.id}"
  role_name   = "CloudClusterAdmin"
  crn_pattern = confluent_kafka_cluster.demo.rbac_crn
}

resource "confluent_api_key" "manager" {
  display_name = "${var.confluent.service_account_name}-manager"
  description  = "Terraform's key for the demo cluster"

  owner {
    id          = confluent_service_account.manager.id
    api_version = confluent_service_account.manager.api_version
    kind        = confluent_service_account.manager.kind
  }

  managed_resource {
    id          = confluent_kafka_cluster.demo.id
    api_version = confluent_kafka_cluster.demo.api_version
    kind        = confluent_kafka_cluster.demo.kind

    environment {
      id = confluent_environment.demo.id
    }
  }

  depends_on = [confluent_role_binding.manager]
}

resource "confluent_kafka_topic" "this" {
  for_each = var.confluent.topics

  kafka_cluster {
    id = confluent_kafka_cluster.demo.id
  }
  topic_name       = each.key
  partitions_count = each.value.partitions
  rest_endpoint    = confluent_kafka_cluster.demo.rest_endpoint
  config = {
    "cleanup.policy" = var.confluent.cleanup_policy
    "retention.ms"   = tostring(each.value.retention_ms)
  }

  credentials {
    key    = confluent_api_key.manager.id
    secret = confluent_api_key.manager.secret
  }
}

# The platform's runtime identity: read/write the fp.bus.* topics, join its fp.<env>.* groups.
resource "confluent_service_account" "runtime" {
  display_name = var.confluent.service_account_name
  description  = "fp_platform runtime (IG, workers, jobs) on the demo cluster"
}

locals {
  topic_prefix = "fp.bus."
  runtime_acls = {
    describe-cluster = { resource_type = "CLUSTER", resource_name = "kafka-cluster", pattern_type = "LITERAL", operation = "DESCRIBE" }
    read-topics      = { resource_type = "TOPIC", resource_name = local.topic_prefix, pattern_type = "PREFIXED", operation = "READ" }
    write-topics     = { resource_type = "TOPIC", resource_name = local.topic_prefix, pattern_type = "PREFIXED", operation = "WRITE" }
    describe-topics  = { resource_type = "TOPIC", resource_name = local.topic_prefix, pattern_type = "PREFIXED", operation = "DESCRIBE" }
    read-groups      = { resource_type = "GROUP", resource_name = var.confluent.consumer_group_prefix, pattern_type = "PREFIXED", operation = "READ" }
  }
}

resource "confluent_kafka_acl" "runtime" {
  for_each = local.runtime_acls

  kafka_cluster {
    id = confluent_kafka_cluster.demo.id
  }
  resource_type = each.value.resource_type
  resource_name = each.value.resource_name
  pattern_type  = each.value.pattern_type
  principal     = "User:${confluent_service_account.runtime.id}"
  host          = "*"
  operation     = each.value.operation
  permission    = "ALLOW"
  rest_endpoint = confluent_kafka_cluster.demo.rest_endpoint

  credentials {
    key    = confluent_api_key.manager.id
    secret = confluent_api_key.manager.secret
  }
}

resource "confluent_api_key" "runtime" {
  display_name = var.confluent.service_account_name
  description  = "fp_platform runtime key, in SSM SecureString"

  owner {
    id          = confluent_service_account.runtime.id
    api_version = confluent_service_account.runtime.api_version
    kind        = confluent_service_account.runtime.kind
  }

  managed_resource {
    id          = confluent_kafka_cluster.demo.id
    api_version = confluent_kafka_cluster.demo.api_version
    kind        = confluent_kafka_cluster.demo.kind

    environment {
      id = confluent_environment.demo.id
    }
  }
}

# Connection material for the runtime (SSM_CONFLUENT_*_PATH); destroyed with the demo stack.
resource "aws_ssm_parameter" "confluent" {
  for_each = {
    confluent_bootstrap  = trimprefix(confluent_kafka_cluster.demo.bootstrap_endpoint, "SASL_SSL://")
    confluent_api_key    = confluent_api_key.runtime.id
    confluent_api_secret = confluent_api_key.runtime.secret
  }

  name  = var.ssm_paths[each.key]
  type  = "SecureString"
  value = each.value
}
