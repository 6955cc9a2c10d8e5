# Names and ARNs derived once: bucket names carry the account and region (spec DA §8.3, docs/decisions.md D10).
locals {
  tags          = merge(var.tags, { (var.expires_at_tag_key) = var.expires_at })
  name_suffix   = "${var.aws_account_id}-${var.aws_region}"
  buckets       = { for k, stem in var.bucket_stems : k => "${stem}-${local.name_suffix}" }
  state_bucket  = "${var.tf_state_bucket_stem}-${local.name_suffix}"
  all_buckets   = merge(local.buckets, { tfstate = local.state_bucket })
  bucket_arns   = { for k, name in local.all_buckets : k => "arn:aws:s3:::${name}" }
  account_arn   = "arn:aws:iam::${var.aws_account_id}:root"
  ssm_arn       = "arn:aws:ssm:${var.aws_region}:${var.aws_account_id}:parameter"
  ecs_arn       = "arn:aws:ecs:${var.aws_region}:${var.aws_account_id}"
  log_group_arn = { for k, name in var.log_groups : k => "arn:aws:logs:${var.aws_region}:${var.aws_account_id}:log-group:${name}" }
  role_arns     = { for k, name in var.role_names : k => "arn:aws:iam::${var.aws_account_id}:role/${name}" }
}
