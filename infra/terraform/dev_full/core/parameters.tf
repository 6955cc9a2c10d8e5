# Network handles the runtime reads (DA-full §8.6): SecureStrings under the platform key.
locals {
  network_parameters = {
    vpc_id             = aws_vpc.platform.id
    subnet_ids_private = join(",", aws_subnet.private[*].id)
    sg_app_id          = aws_security_group.app.id
    sg_db_id           = aws_security_group.db.id
  }
}

resource "aws_ssm_parameter" "network" {
  for_each = local.network_parameters

  name   = var.ssm_paths[each.key]
  type   = "SecureString"
  key_id = aws_kms_key.platform.arn
  value  = each.value
}
