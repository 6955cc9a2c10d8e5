# RDS Postgres for IG, RTDL, CM/LS and lease state (docs/decisions.md D7): private (no public
# address), encrypted, TLS required by the server (rds.force_ssl) as the clients require it
# (DB_SSL_MODE: require). Demo-scoped: destroyed without a final snapshot (spec DA §14.1).

resource "aws_db_subnet_group" "demo" {
  name       = "${local.name_prefix}-db"
  subnet_ids = aws_subnet.public[*].id
}

resource "aws_db_parameter_group" "tls" {
  name   = "${local.name_prefix}-postgres${split(".", var.db.engine_version)[0]}-tls"
  family = "postgres${split(".", var.db.engine_version)[0]}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000" # statements slower than 1 s, for the demo's logs
  }
}

resource "aws_db_instance" "demo" {
  identifier     = var.db.identifier
  engine         = "postgres"
  engine_version = var.db.engine_version
  instance_class = var.db.instance_class
  db_name        = var.db.name
  port           = var.db.port
  username       = var.db.username

  password_wo         = var.db_password
  password_wo_version = var.secrets_version

  allocated_storage    = var.db.allocated_storage_gb
  storage_type         = "gp3"
  storage_encrypted    = true
  db_subnet_group_name = aws_db_subnet_group.demo.name
  parameter_group_name = aws_db_parameter_group.tls.name

  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  multi_az               = false

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  copy_tags_to_snapshot               = true
  backup_retention_period             = 1
  deletion_protection                 = false # demo → destroy (spec DA §5.3)
  skip_final_snapshot                 = true
  apply_immediately                   = true
}
