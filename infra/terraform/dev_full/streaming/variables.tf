variable "msk_auth_mode" {
  description = "MSK_AUTH_MODE (DA-full §5.1.1): only SASL_IAM is built."
  type        = string

  validation {
    condition     = var.msk_auth_mode == "SASL_IAM"
    error_message = "dev_full pins MSK_AUTH_MODE = SASL_IAM."
  }
}

variable "msk_cluster_mode" {
  description = "MSK_CLUSTER_MODE (DA-full §5.1.1): only Serverless is built."
  type        = string

  validation {
    condition     = var.msk_cluster_mode == "Serverless"
    error_message = "dev_full pins MSK_CLUSTER_MODE = Serverless."
  }
}

variable "msk_iam_port" {
  description = "MSK_IAM_PORT: MSK's private SASL/IAM listener."
  type        = number
}
