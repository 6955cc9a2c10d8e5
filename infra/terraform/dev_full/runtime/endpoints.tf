# Interface endpoints: how nodes, pods and SageMaker jobs reach AWS APIs without a NAT gateway (DA-full §9.1,
# §9.3 outbound constrained to the managed services used). They bill by the hour, so they live and die with
# the runtime stack; one subnet each (cross-AZ traffic is cheaper than a second set while proving).
locals {
  interface_endpoints = toset([
    "ec2", "ecr.api", "ecr.dkr", "sts", "logs", "monitoring", "ssm", "kms", "eks", "eks-auth",
    "sagemaker.api", "sagemaker.runtime", "glue",
  ])
}

resource "aws_security_group" "endpoints" {
  name        = "${local.name_prefix}-endpoints"
  description = "VPC interface endpoints of the platform"
  vpc_id      = var.core.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_app" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the workloads"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = var.core.sg_app_id
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = var.core.vpc_id
  service_name        = "com.amazonaws.${var.aws_region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = [var.core.private_subnet_ids[0]]
  security_group_ids  = [aws_security_group.endpoints.id]
  tags                = { Name = "${local.name_prefix}-${each.key}" }
}
