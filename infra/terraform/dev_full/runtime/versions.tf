# Terraform and providers, pinned exactly (DA-full §8.4; docs/decisions.md D9). Kubernetes/Helm are not
# providers of this stack: the cluster's contents are applied by the platform (issue 24 items 1-3).
terraform {
  required_version = ">= 1.11, < 2.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }

  # Remote state (DA-full §8.2): key dev_full/runtime/terraform.tfstate in the tfstate bucket core creates, locked
  # by its DynamoDB table. Bucket and table come from -backend-config (infra/terraform/README.md).
  backend "s3" {}
}
