# The Confluent Cloud part of the demo stack (spec DA §8.1, §8.7). The Confluent provider is not on the
# build machine: this module is checked by terraform fmt, python-hcl2 and checkov only, never
# validated, planned or applied there (docs/decisions.md D9).
terraform {
  required_version = ">= 1.11, < 2.0"

  required_providers {
    confluent = {
      source  = "confluentinc/confluent"
      version = "~> 2.0"
    }
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }
}
