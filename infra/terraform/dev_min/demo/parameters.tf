# SSM SecureString parameters the runtime reads (spec DA §8.5, §10.1), destroyed with the demo stack so
# no credential outlives it. Secrets are write-only (never in state); the Confluent ones are written
# by modules/confluent.

resource "aws_ssm_parameter" "db_password" {
  name             = var.ssm_paths["db_password"]
  type             = "SecureString"
  value_wo         = var.db_password
  value_wo_version = var.secrets_version
}

# The application role's password: the RDS master (SSM_DB_PASSWORD_PATH) runs the migrations and creates
# this role (fp_platform.substrate.db.ensure_app_role); every runtime task connects as it (issue 20).
resource "aws_ssm_parameter" "db_app_password" {
  name             = var.ssm_paths["db_app_password"]
  type             = "SecureString"
  value_wo         = var.db_app_password
  value_wo_version = var.secrets_version
}

resource "aws_ssm_parameter" "ig_api_key" {
  name             = var.ssm_paths["ig_api_key"]
  type             = "SecureString"
  value_wo         = var.ig_api_key
  value_wo_version = var.secrets_version
}

locals {
  parameters = {
    db_user           = var.db.username
    db_app_user       = var.db.app_username
    db_endpoint       = aws_db_instance.demo.address
    vpc_id            = aws_vpc.demo.id
    subnet_ids_public = join(",", aws_subnet.public[*].id)
    sg_app_id         = aws_security_group.app.id
    sg_db_id          = aws_security_group.db.id
  }
}

resource "aws_ssm_parameter" "config" {
  for_each = local.parameters

  name  = var.ssm_paths[each.key]
  type  = "SecureString"
  value = each.value
}
