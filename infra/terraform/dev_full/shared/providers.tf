# The AWS provider. Every resource carries the four tags (DA-full §8.3) through default_tags; aws_offline
# skips the STS/metadata calls so the infra tests can plan with fake credentials (off for a real account).
provider "aws" {
  region = var.aws_region

  skip_credentials_validation = var.aws_offline
  skip_metadata_api_check     = var.aws_offline
  skip_requesting_account_id  = var.aws_offline

  default_tags {
    tags = local.tags
  }
}
