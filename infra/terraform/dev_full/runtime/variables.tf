variable "kubernetes_version" {
  description = "EKS_KUBERNETES_VERSION (the version the manifests are validated against)."
  type        = string
}

variable "node_role_name" {
  description = "ROLE_EKS_NODEGROUP_DEV_FULL."
  type        = string
}

variable "node_instance_types" {
  description = "EKS_NODE_INSTANCE_TYPES."
  type        = list(string)
}

variable "node_scaling" {
  description = "EKS_NODE_SCALING: min (0, so P17 can scale to zero), desired, max."
  type        = object({ min = number, desired = number, max = number })
}

variable "node_disk_gb" {
  description = "EKS_NODE_DISK_GB."
  type        = number
}

variable "irsa" {
  description = "Workload roles by short name: role name (ROLE_*), the namespace and ServiceAccount trusted to assume it."
  type        = map(object({ role_name = string, namespace = string, service_account = string }))
}

variable "topics" {
  description = "Every topic of the registry (Appendix C): the Kafka resources the roles are scoped to."
  type        = list(string)
}

variable "consumer_group_prefix" {
  description = "fp.<env>. : consumer groups of this rung (CONSUMER_GROUP_ID_PATTERN)."
  type        = string
}

variable "sagemaker_endpoint_name" {
  description = "SAGEMAKER_ENDPOINT_NAME (DF scores through it)."
  type        = string
}

variable "sagemaker_execution_role_name" {
  description = "ROLE_SAGEMAKER_EXECUTION (the orchestrator passes it to SageMaker)."
  type        = string
}

variable "iceberg_database" {
  description = "ICEBERG_NAMESPACE (the Glue database the learning jobs write)."
  type        = string
}

variable "log_group_prefix" {
  description = "CLOUDWATCH_LOG_GROUP_PREFIX."
  type        = string
}

variable "eks_addon_registry_account" {
  description = "The account of EKS's regional image registry (602401143452 in eu-west-2 and most regions)."
  type        = string
  default     = "602401143452"
}

variable "operator_cidrs" {
  description = "Operator-set: the addresses allowed to reach the EKS API endpoint (kubectl, the operator's Dagster UI port-forward)."
  type        = list(string)

  validation {
    condition     = length(var.operator_cidrs) > 0 && !contains(var.operator_cidrs, "0.0.0.0/0")
    error_message = "Name the operator's addresses; the EKS API is never open to the internet (DA-full §9.1)."
  }
}
