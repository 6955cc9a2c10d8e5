# Inputs. handles.auto.tfvars.json sets the ones named by the handles registry (rendered by
# infra/terraform/tfvars.py, never edited by hand); the operator sets the rest. The Confluent
# module's inputs are declared in confluent.tf.

# --- rendered from the handles
variable "project_slug" {
  description = "PROJECT_SLUG."
  type        = string
}

variable "env" {
  description = "The rung (dev_min)."
  type        = string
}

variable "aws_region" {
  description = "AWS_REGION."
  type        = string
}

variable "tags" {
  description = "TAG_PROJECT, TAG_ENV and TAG_OWNER as a map; expires_at is added from var.expires_at."
  type        = map(string)
}

variable "expires_at_tag_key" {
  description = "The key of TAG_EXPIRES_AT."
  type        = string
}

variable "role_names" {
  description = "IAM role names by short name (core creates them)."
  type        = map(string)
}

variable "ssm_paths" {
  description = "SSM parameter paths by short name, from the SSM_*_PATH handles."
  type        = map(string)
}

variable "log_group_prefix" {
  description = "CLOUDWATCH_LOG_GROUP_PREFIX (core creates the groups)."
  type        = string
}

variable "ecr_repo_name" {
  description = "ECR_REPO_NAME (core creates the repository)."
  type        = string
}

variable "ecs_cluster_name" {
  description = "ECS_CLUSTER_NAME."
  type        = string
}

variable "ecs_task_cpu" {
  description = "ECS_TASK_CPU (Fargate CPU units per task)."
  type        = number
}

variable "ecs_task_memory_mib" {
  description = "ECS_TASK_MEMORY_MIB."
  type        = number
}

variable "ecs_assign_public_ip" {
  description = "ECS_ASSIGN_PUBLIC_IP: tasks reach the internet through public IPs, never a NAT (spec DA §9.2)."
  type        = bool
}

variable "service_discovery_namespace" {
  description = "ECS_SERVICE_DISCOVERY_NAMESPACE: private DNS for the IG, in place of a load balancer."
  type        = string
}

variable "services" {
  description = "ECS services (one replica each): the spine packs' workers and the Dagster webserver and daemon."
  type = map(object({
    role           = string
    log_group      = string
    command        = list(string)
    port           = optional(number)
    discovery_name = optional(string)
    health_path    = optional(string)
  }))
}

variable "jobs" {
  description = "One-shot task definitions (TD_* handles) with their role and command: none for the jobs Dagster Pipes launches (each launch's command override is the command line), `fp-platform db migrate` for the migrations task."
  type = map(object({
    role      = string
    log_group = string
    command   = optional(list(string))
  }))
}

variable "container_env" {
  description = "Environment every container gets (FP_PROFILE, AWS_REGION, DAGSTER_HOME)."
  type        = map(string)
}

variable "run_id_env_key" {
  description = "REQUIRED_PLATFORM_RUN_ID_ENV_KEY: the services' run scope."
  type        = string
}

variable "vpc_cidr_block" {
  description = "VPC_CIDR_BLOCK."
  type        = string
}

variable "public_subnet_cidr_blocks" {
  description = "SUBNET_CIDR_BLOCKS_PUBLIC, one per availability zone."
  type        = list(string)
}

variable "db" {
  description = "RDS Postgres: RDS_INSTANCE_ID, RDS_INSTANCE_CLASS, DB_ENGINE_VERSION, RDS_ALLOCATED_STORAGE_GB, DB_NAME, DB_PORT, RDS_MASTER_USERNAME, RDS_APP_USERNAME."
  type = object({
    identifier           = string
    instance_class       = string
    engine_version       = string
    allocated_storage_gb = number
    name                 = string
    port                 = number
    username             = string
    app_username         = string
  })
}

# --- set by the operator (never committed)
variable "aws_account_id" {
  description = "The AWS account (scopes ARNs and names core's buckets)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id is 12 digits."
  }
}

variable "expires_at" {
  description = "The expires_at tag (YYYY-MM-DD): a teardown reminder (spec DA §8.3)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.expires_at))
    error_message = "expires_at is YYYY-MM-DD."
  }
}

variable "image_digest" {
  description = "The platform image's registry digest (sha256:...), recorded by P(-1); tasks run it by digest."
  type        = string

  validation {
    condition     = can(regex("^sha256:[0-9a-f]{64}$", var.image_digest))
    error_message = "image_digest is sha256:<64 hex>."
  }
}

variable "platform_run_id" {
  description = "The run the services are scoped to (REQUIRED_PLATFORM_RUN_ID)."
  type        = string

  validation {
    condition     = can(regex("^platform_[0-9]{8}T[0-9]{6}Z$", var.platform_run_id))
    error_message = "platform_run_id is platform_<YYYYMMDDTHHMMSS>Z."
  }
}

variable "db_password" {
  description = "The database master password: written to RDS and to SSM_DB_PASSWORD_PATH, kept out of state."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "db_app_password" {
  description = "The application role's password (issue 20: not superuser, owns nothing): written to SSM_DB_APP_PASSWORD_PATH, kept out of state; the migrations task creates the role with it."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "ig_api_key" {
  description = "The IG writer-boundary API key (X-IG-Api-Key), written to SSM_IG_API_KEY_PATH, kept out of state."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "secrets_version" {
  description = "Bump to rewrite the write-only secrets (db_password, db_app_password, ig_api_key) on the next apply."
  type        = number
  default     = 1
}

# --- test harness only (defaults are right for a real account)
variable "aws_offline" {
  description = "Skip STS, metadata and account-id calls (offline plan with fake credentials)."
  type        = bool
  default     = false
}

variable "aws_endpoint_url" {
  description = "One endpoint for every AWS client (moto_server in the apply test); null = AWS."
  type        = string
  default     = null
}
