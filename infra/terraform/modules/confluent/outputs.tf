output "cluster_id" {
  description = "The demo cluster's id (the run config's Kafka cluster identity, spec DA §10.3)."
  value       = confluent_kafka_cluster.demo.id
}

output "bootstrap_endpoint" {
  description = "Kafka bootstrap (host:port), also at SSM_CONFLUENT_BOOTSTRAP_PATH."
  value       = trimprefix(confluent_kafka_cluster.demo.bootstrap_endpoint, "SASL_SSL://")
  sensitive   = true
}

output "runtime_api_key" {
  description = "The runtime API key id, also at SSM_CONFLUENT_API_KEY_PATH."
  value       = confluent_api_key.runtime.id
  sensitive   = true
}

output "runtime_api_secret" {
  description = "The runtime API secret, also at SSM_CONFLUENT_API_SECRET_PATH."
  value       = confluent_api_key.runtime.secret
  sensitive   = true
}

output "topic_names" {
  description = "Topics created on the cluster."
  value       = sort(keys(confluent_kafka_topic.this))
}
