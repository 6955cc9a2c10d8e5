# Names and ARNs of what core owns, derived the way core derives them (no remote-state read, so demo
# plans and destroys on its own).
locals {
  tags        = merge(var.tags, { (var.expires_at_tag_key) = var.expires_at })
  name_prefix = "${var.project_slug}-${replace(var.env, "_", "-")}"
  azs         = [for i, _ in var.public_subnet_cidr_blocks : "${var.aws_region}${substr("abcdef", i, 1)}"]
  image       = "${var.aws_account_id}.dkr.ecr.${var.aws_region}.amazonaws.com/${var.ecr_repo_name}@${var.image_digest}"
  role_arns   = { for k, name in var.role_names : k => "arn:aws:iam::${var.aws_account_id}:role/${name}" }
  ports       = distinct([for s in var.services : s.port if s.port != null])
}
