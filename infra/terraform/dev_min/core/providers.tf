# The AWS provider. Every resource carries the spec's four tags (DA §8.3) through default_tags.
# aws_offline skips the calls a plan would make to STS and the instance metadata service, so the infra
# tests can plan with fake credentials; aws_endpoint_url points every client at moto_server in the
# apply test. Both are off for a real account.
provider "aws" {
  region = var.aws_region

  skip_credentials_validation = var.aws_offline
  skip_metadata_api_check     = var.aws_offline
  skip_requesting_account_id  = var.aws_offline
  s3_use_path_style           = var.aws_endpoint_url != null

  endpoints {
    budgets    = var.aws_endpoint_url
    cloudwatch = var.aws_endpoint_url
    dynamodb   = var.aws_endpoint_url
    ecr        = var.aws_endpoint_url
    iam        = var.aws_endpoint_url
    logs       = var.aws_endpoint_url
    s3         = var.aws_endpoint_url
    ssm        = var.aws_endpoint_url
    sts        = var.aws_endpoint_url
  }

  default_tags {
    tags = local.tags
  }
}
