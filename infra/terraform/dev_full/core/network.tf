# The platform VPC (DA-full §9.1 private by default): private subnets only, no internet gateway and no NAT
# gateway (the spec pins none). Pods, nodes, SageMaker jobs, MSK and Aurora reach AWS APIs through VPC
# endpoints: S3 through the free gateway endpoint here, the rest through interface endpoints in the runtime
# stack (they bill by the hour and go with it). Security groups are here so every stack can reference them.

resource "aws_vpc" "platform" {
  cidr_block           = var.vpc_cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true # private DNS of the interface endpoints needs both
  tags                 = { Name = local.name_prefix }
}

# The default security group allows all traffic between its members: take every rule away.
resource "aws_default_security_group" "closed" {
  vpc_id = aws_vpc.platform.id
}

resource "aws_subnet" "private" {
  count = length(var.private_subnet_cidr_blocks)

  vpc_id            = aws_vpc.platform.id
  cidr_block        = var.private_subnet_cidr_blocks[count.index]
  availability_zone = local.azs[count.index]
  tags = {
    Name                              = "${local.name_prefix}-private-${local.azs[count.index]}"
    "kubernetes.io/role/internal-elb" = "1"
  }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.platform.id
  tags   = { Name = "${local.name_prefix}-private" }
}

resource "aws_route_table_association" "private" {
  count = length(aws_subnet.private)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.platform.id
  service_name      = "com.amazonaws.${var.aws_region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]
  tags              = { Name = "${local.name_prefix}-s3" }
}

# Workloads (EKS nodes and pods, SageMaker jobs): HTTPS to the VPC endpoints and S3, Kafka over IAM to MSK,
# Postgres to Aurora, and each other inside the group. Nothing comes from outside the VPC.
resource "aws_security_group" "app" {
  #checkov:skip=CKV2_AWS_5:attached in the runtime and data_ml stacks (separate state); DA-full §8.1
  name        = "${local.name_prefix}-app"
  description = "EKS nodes, pods and SageMaker jobs of the platform"
  vpc_id      = aws_vpc.platform.id
}

resource "aws_vpc_security_group_egress_rule" "app_https_vpc" {
  security_group_id = aws_security_group.app.id
  description       = "VPC interface endpoints and the EKS API"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.vpc_cidr_block
}

resource "aws_vpc_security_group_egress_rule" "app_https_s3" {
  security_group_id = aws_security_group.app.id
  description       = "S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "app_msk_iam" {
  security_group_id = aws_security_group.app.id
  description       = "MSK Serverless, SASL/IAM"
  ip_protocol       = "tcp"
  from_port         = var.msk_iam_port
  to_port           = var.msk_iam_port
  cidr_ipv4         = var.vpc_cidr_block
}

resource "aws_vpc_security_group_egress_rule" "app_db" {
  security_group_id            = aws_security_group.app.id
  description                  = "Aurora PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "app_internal" {
  security_group_id            = aws_security_group.app.id
  description                  = "pod and node traffic inside the group"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.app.id
}

resource "aws_vpc_security_group_ingress_rule" "app_internal" {
  security_group_id            = aws_security_group.app.id
  description                  = "pod and node traffic inside the group"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.app.id
}

resource "aws_security_group" "db" {
  #checkov:skip=CKV2_AWS_5:attached to Aurora in the data_ml stack (separate state); DA-full §8.1
  name        = "${local.name_prefix}-db"
  description = "Aurora PostgreSQL of the platform"
  vpc_id      = aws_vpc.platform.id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_app" {
  security_group_id            = aws_security_group.db.id
  description                  = "Postgres from the workloads"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.app.id
}
