locals {
  azs         = [for i, _ in var.private_subnet_cidr_blocks : "${var.aws_region}${substr("abcdef", i, 1)}"]
  data_keys   = [for k in keys(var.bucket_stems) : k if k != "tfstate"]
  project_arn = "arn:aws:iam::${var.aws_account_id}:role/${local.name_prefix}-*"
}
