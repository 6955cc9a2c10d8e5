# Terraform and providers, pinned exactly (spec DA §8.4 asks for at least a major range; docs/decisions.md D9).
terraform {
  required_version = ">= 1.11, < 2.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }

  # Remote state (spec DA §8.2): key dev_min/core/terraform.tfstate in the tfstate bucket, locked by the
  # DynamoDB table this stack creates. Bucket and table come from -backend-config (see infra/terraform/README.md).
  backend "s3" {}
}
