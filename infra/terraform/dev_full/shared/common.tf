# Inputs every dev_full stack shares: handles.auto.tfvars.json sets the rendered ones
# (infra/terraform/tfvars.py, never edited by hand), the operator the rest.

variable "project_slug" {
  description = "PROJECT_SLUG."
  type        = string
}

variable "env" {
  description = "The rung (dev_full)."
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

variable "bucket_stems" {
  description = "Buckets by short name → S3_*_BUCKET / TF_STATE_BUCKET stem; the bucket is <stem>-<account>-<region>."
  type        = map(string)
}

variable "ssm_paths" {
  description = "SSM parameter paths by short name (DA-full §8.6)."
  type        = map(string)
}

variable "ecr_repo_name" {
  description = "ECR_REPO_NAME."
  type        = string
}

variable "eks_cluster_name" {
  description = "EKS_CLUSTER_NAME."
  type        = string
}

variable "msk_cluster_name" {
  description = "MSK_CLUSTER_NAME."
  type        = string
}

variable "aws_account_id" {
  description = "Operator-set: the account (suffixes bucket names, scopes ARNs)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id is 12 digits."
  }
}

variable "expires_at" {
  description = "Operator-set: the expires_at tag (YYYY-MM-DD), a teardown reminder."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.expires_at))
    error_message = "expires_at is YYYY-MM-DD."
  }
}

variable "aws_offline" {
  description = "Test harness only: skip STS, metadata and account-id calls (offline plan with fake credentials)."
  type        = bool
  default     = false
}

locals {
  tags        = merge(var.tags, { (var.expires_at_tag_key) = var.expires_at })
  name_prefix = "${var.project_slug}-${replace(var.env, "_", "-")}"
  name_suffix = "${var.aws_account_id}-${var.aws_region}"
  buckets     = { for k, stem in var.bucket_stems : k => "${stem}-${local.name_suffix}" }
  bucket_arns = { for k, name in local.buckets : k => "arn:aws:s3:::${name}" }
  ssm_arn     = "arn:aws:ssm:${var.aws_region}:${var.aws_account_id}:parameter"
  ssm_arns    = { for k, p in var.ssm_paths : k => "${local.ssm_arn}${p}" }
  ecr_arn     = "arn:aws:ecr:${var.aws_region}:${var.aws_account_id}:repository/${var.ecr_repo_name}"
  eks_arn     = "arn:aws:eks:${var.aws_region}:${var.aws_account_id}:cluster/${var.eks_cluster_name}"
  msk_arn     = "arn:aws:kafka:${var.aws_region}:${var.aws_account_id}"
  account_arn = "arn:aws:iam::${var.aws_account_id}:root"
}
