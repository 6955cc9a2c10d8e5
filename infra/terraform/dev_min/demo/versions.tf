# Terraform and the AWS provider, pinned exactly (docs/decisions.md D9). The Confluent provider is
# required in confluent.tf, beside the only module that uses it.
terraform {
  required_version = ">= 1.11, < 2.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }

  # Remote state key dev_min/demo/terraform.tfstate, separate from core (spec DA §8.1, §8.2).
  backend "s3" {}
}
