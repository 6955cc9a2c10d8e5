# core's own inputs (common.tf has the shared ones).

variable "tf_lock_table" {
  description = "TF_LOCK_TABLE."
  type        = string
}

variable "tf_state_keys" {
  description = "TF_STATE_KEY_* of the five stacks: the operator role may write only these."
  type        = list(string)
}

variable "bucket_lifecycle" {
  description = "Per data bucket: RETENTION_*_DAYS expiry (null = keep) and *_TRANSITION_* days by storage class."
  type = map(object({
    expiry_days = optional(number)
    transitions = map(number)
  }))
}

variable "abort_incomplete_multipart_days" {
  description = "S3_ABORT_INCOMPLETE_MULTIPART_DAYS."
  type        = number
}

variable "kms_key_alias" {
  description = "KMS_KEY_ALIAS: the platform's customer-managed key (DA-full §10.1)."
  type        = string
}

variable "vpc_cidr_block" {
  description = "VPC_CIDR_BLOCK."
  type        = string
}

variable "private_subnet_cidr_blocks" {
  description = "SUBNET_CIDR_BLOCKS_PRIVATE: one per availability zone."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_cidr_blocks) >= 2
    error_message = "EKS and Aurora need subnets in two availability zones."
  }
}

variable "terraform_apply_role_name" {
  description = "ROLE_TERRAFORM_APPLY_DEV_FULL."
  type        = string
}

variable "ssm_prefix" {
  description = "SSM_PARAMETER_PREFIX."
  type        = string
}

variable "msk_iam_port" {
  description = "MSK_IAM_PORT: MSK's private SASL/IAM listener."
  type        = number
}
