# Inputs. handles.auto.tfvars.json sets the ones named by the handles registry (rendered by
# infra/terraform/tfvars.py, never edited by hand); the operator sets the rest.

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
  description = "AWS_REGION (spec DA §8.3 region_default)."
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

variable "tf_state_bucket_stem" {
  description = "TF_STATE_BUCKET; the bucket is named <stem>-<account>-<region>."
  type        = string
}

variable "tf_lock_table" {
  description = "TF_LOCK_TABLE."
  type        = string
}

variable "tf_state_keys" {
  description = "TF_STATE_KEY_CORE and TF_STATE_KEY_DEMO: the operator role may write only these."
  type        = list(string)
}

variable "bucket_stems" {
  description = "Data buckets by short name (oracle, archive, quarantine, evidence, artifacts) → S3_*_BUCKET stem."
  type        = map(string)
}

variable "bucket_lifecycle" {
  description = "Per bucket: RETENTION_*_DAYS expiry (null = keep) and *_TRANSITION_* days by storage class."
  type = map(object({
    expiry_days = optional(number)
    transitions = map(number)
  }))
}

variable "abort_incomplete_multipart_days" {
  description = "S3_ABORT_INCOMPLETE_MULTIPART_DAYS."
  type        = number
}

variable "ecr_repo_name" {
  description = "ECR_REPO_NAME."
  type        = string
}

variable "github_push_ref" {
  description = "GITHUB_OIDC_PUSH_REF: the one git ref whose image workflow runs may assume the ECR push role."
  type        = string
}

variable "role_names" {
  description = "IAM role names by short name (run-process App. C), from the ROLE_* handles."
  type        = map(string)
}

variable "ssm_prefix" {
  description = "SSM_PARAMETER_PREFIX."
  type        = string
}

variable "ssm_paths" {
  description = "SSM parameter paths by short name, from the SSM_*_PATH handles."
  type        = map(string)
}

variable "ecs_cluster_name" {
  description = "ECS_CLUSTER_NAME (the demo stack creates it; the orchestrator role is scoped to it)."
  type        = string
}

variable "log_groups" {
  description = "CloudWatch log groups by short name → full name (CLOUDWATCH_LOG_GROUP_PREFIX + CLOUDWATCH_LOG_GROUPS)."
  type        = map(string)
}

variable "log_retention_days" {
  description = "RETENTION_CLOUDWATCH_LOGS_DAYS (spec DA §11.5, §14.4: 3-7 days)."
  type        = number

  validation {
    condition     = var.log_retention_days >= 3 && var.log_retention_days <= 7
    error_message = "dev_min log retention must be 3-7 days (spec DA §14.4)."
  }
}

variable "budget" {
  description = "AWS_BUDGET_NAME, AWS_BUDGET_LIMIT_AMOUNT, AWS_BUDGET_CURRENCY and AWS_BUDGET_ALERT_THRESHOLDS."
  type = object({
    name             = string
    limit_amount     = number
    currency         = string
    alert_thresholds = list(number)
  })

  validation {
    condition     = length(var.budget.alert_thresholds) >= 3
    error_message = "The budget needs at least three alert thresholds (spec DA §15.1.3)."
  }
}

# --- set by the operator (never committed)
variable "aws_account_id" {
  description = "The AWS account the stack lives in: suffixes bucket names (spec DA §8.3) and scopes ARNs."
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

variable "github_owner" {
  description = "The GitHub user or organisation owning the repository whose image workflow may push (OIDC `sub`)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+$", var.github_owner))
    error_message = "github_owner is a GitHub user or organisation name (letters, digits, hyphens)."
  }
}

variable "github_repository" {
  description = "The repository's name under github_owner (OIDC `sub` = repo:<owner>/<repository>:ref:<push ref>)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is one repository name, without owner or wildcards."
  }
}

variable "budget_alert_emails" {
  description = "Who receives the budget alerts."
  type        = list(string)

  validation {
    condition     = length(var.budget_alert_emails) > 0
    error_message = "At least one budget alert recipient."
  }
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
