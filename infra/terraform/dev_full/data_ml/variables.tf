variable "aurora" {
  description = "RDS_CLUSTER_ID, DB_ENGINE, DB_ENGINE_VERSION, AURORA_ACU_RANGE, AURORA_INSTANCE_COUNT (AURORA_HA), DB_NAME, DB_PORT, AURORA_MASTER_USERNAME, AURORA_BACKUP_RETENTION_DAYS."
  type = object({
    cluster_id            = string
    engine                = string
    engine_major_version  = string
    min_acu               = number
    max_acu               = number
    instance_count        = number
    database_name         = string
    port                  = number
    master_username       = string
    backup_retention_days = number
  })

  validation {
    condition     = var.aurora.instance_count >= 2
    error_message = "AURORA_HA pins one writer and at least one reader (DA-full §5.1.1)."
  }
}

variable "sagemaker_execution_role_name" {
  description = "ROLE_SAGEMAKER_EXECUTION."
  type        = string
}

variable "iceberg_database" {
  description = "ICEBERG_NAMESPACE: the Glue database of the Iceberg tables."
  type        = string
}

variable "iceberg_warehouse_prefix" {
  description = "Key prefix of the Iceberg warehouse in the artifacts bucket."
  type        = string
}

variable "mlflow_artifact_prefix" {
  description = "Key prefix of MLflow's artifacts in the artifacts bucket."
  type        = string
}

variable "log_group_prefix" {
  description = "CLOUDWATCH_LOG_GROUP_PREFIX."
  type        = string
}

# --- operator-set, write-only: never in state or plan
variable "db_password" {
  description = "Aurora's master password (to Aurora and SSM, never into state)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "db_app_password" {
  description = "The application role's password (SSM only; the migrations create the role)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "secrets_version" {
  description = "Bump to rotate the write-only secrets above."
  type        = number
  default     = 1
}
