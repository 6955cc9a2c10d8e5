# The demo VPC (spec DA §9.2): public subnets with an internet gateway, tasks get public IPs; no NAT
# gateway, no load balancer (DA §5.4). Destroyed with the demo stack.

resource "aws_vpc" "demo" {
  cidr_block           = var.vpc_cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true # Cloud Map private DNS (the IG's name) needs both
  tags                 = { Name = local.name_prefix }
}

# The default security group allows all traffic between its members: take every rule away.
resource "aws_default_security_group" "closed" {
  vpc_id = aws_vpc.demo.id
}

resource "aws_internet_gateway" "demo" {
  vpc_id = aws_vpc.demo.id
  tags   = { Name = local.name_prefix }
}

resource "aws_subnet" "public" {
  count = length(var.public_subnet_cidr_blocks)

  vpc_id            = aws_vpc.demo.id
  cidr_block        = var.public_subnet_cidr_blocks[count.index]
  availability_zone = local.azs[count.index]
  tags              = { Name = "${local.name_prefix}-public-${local.azs[count.index]}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.demo.id
  tags   = { Name = "${local.name_prefix}-public" }
}

resource "aws_route" "internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.demo.id
}

resource "aws_route_table_association" "public" {
  count = length(aws_subnet.public)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# Tasks: reach Confluent (SASL_SSL 9092) and AWS APIs/ECR (443) outwards, the database, and each other
# on the service ports (the IG, the Dagster webserver). Nothing from the internet comes in.
resource "aws_security_group" "app" {
  name        = "${local.name_prefix}-app"
  description = "ECS tasks of the demo stack"
  vpc_id      = aws_vpc.demo.id
}

resource "aws_vpc_security_group_egress_rule" "app_https" {
  security_group_id = aws_security_group.app.id
  description       = "AWS APIs, ECR, Confluent REST"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "app_kafka" {
  security_group_id = aws_security_group.app.id
  description       = "Confluent Cloud Kafka (SASL_SSL)"
  ip_protocol       = "tcp"
  from_port         = 9092
  to_port           = 9092
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "app_db" {
  security_group_id            = aws_security_group.app.id
  description                  = "RDS Postgres"
  ip_protocol                  = "tcp"
  from_port                    = var.db.port
  to_port                      = var.db.port
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "app_services" {
  for_each = toset([for p in local.ports : tostring(p)])

  security_group_id            = aws_security_group.app.id
  description                  = "service port ${each.value} inside the stack"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.app.id
}

resource "aws_vpc_security_group_ingress_rule" "app_services" {
  for_each = toset([for p in local.ports : tostring(p)])

  security_group_id            = aws_security_group.app.id
  description                  = "service port ${each.value} from the stack's own tasks"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.app.id
}

resource "aws_security_group" "db" {
  name        = "${local.name_prefix}-db"
  description = "RDS Postgres of the demo stack"
  vpc_id      = aws_vpc.demo.id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_app" {
  security_group_id            = aws_security_group.db.id
  description                  = "Postgres from the ECS tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.db.port
  to_port                      = var.db.port
  referenced_security_group_id = aws_security_group.app.id
}
