# Aurora PostgreSQL Serverless v2 (DA-full §5.1.6, §5.1.1): 0.5-8 ACU, one writer and one reader in two
# availability zones, private, encrypted with the platform key, TLS required by the server (rds.force_ssl) as
# the clients require it (DB_SSL_MODE: require), IAM authentication on. Destroyed after a proving window
# (DA-full §14.2); the final snapshot keeps the state stores DA-full §14.1 says persist.

resource "aws_db_subnet_group" "aurora" {
  name       = "${var.aurora.cluster_id}-subnets"
  subnet_ids = var.core.private_subnet_ids
}

resource "aws_rds_cluster_parameter_group" "tls" {
  name   = "${var.aurora.cluster_id}-pg${var.aurora.engine_major_version}-tls"
  family = "aurora-postgresql${var.aurora.engine_major_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl" # schema changes (the migrations) in the postgresql log export
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

resource "aws_rds_cluster" "aurora" {
  #checkov:skip=CKV_AWS_139:deletion protection would block the window's destroy; DA-full §14.2, §15.1.2 (the final snapshot keeps the state)
  #checkov:skip=CKV2_AWS_8:an AWS Backup plan is a second always-on cost; DA-full §5.2, §14.2 (backup retention + final snapshot)
  cluster_identifier = var.aurora.cluster_id
  engine             = var.aurora.engine
  engine_mode        = "provisioned" # Serverless v2 runs as provisioned with db.serverless instances
  engine_version     = var.aurora.engine_major_version
  database_name      = var.aurora.database_name
  port               = var.aurora.port
  master_username    = var.aurora.master_username

  master_password_wo         = var.db_password
  master_password_wo_version = var.secrets_version

  serverlessv2_scaling_configuration {
    min_capacity = var.aurora.min_acu
    max_capacity = var.aurora.max_acu
  }

  db_subnet_group_name            = aws_db_subnet_group.aurora.name
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.tls.name
  vpc_security_group_ids          = [var.core.sg_db_id]

  storage_encrypted                   = true
  kms_key_id                          = var.core.kms_key_arn
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  backup_retention_period             = var.aurora.backup_retention_days
  copy_tags_to_snapshot               = true
  deletion_protection                 = false # the stack is destroyed after each window (DA-full §14.2)
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.aurora.cluster_id}-final"
  apply_immediately                   = true
}

resource "aws_rds_cluster_instance" "aurora" {
  count = var.aurora.instance_count

  identifier                 = "${var.aurora.cluster_id}-${count.index}"
  cluster_identifier         = aws_rds_cluster.aurora.id
  instance_class             = "db.serverless"
  engine                     = aws_rds_cluster.aurora.engine
  engine_version             = aws_rds_cluster.aurora.engine_version
  db_subnet_group_name       = aws_db_subnet_group.aurora.name
  publicly_accessible        = false
  auto_minor_version_upgrade = true
  promotion_tier             = count.index
}

# Credentials and endpoints the runtime reads (DA-full §8.6, §10.1): SecureStrings under the platform key;
# the passwords are write-only (never in state).
resource "aws_ssm_parameter" "db_password" {
  name             = var.ssm_paths["db_password"]
  type             = "SecureString"
  key_id           = var.core.kms_key_arn
  value_wo         = var.db_password
  value_wo_version = var.secrets_version
}

resource "aws_ssm_parameter" "db_app_password" {
  name             = var.ssm_paths["db_app_password"]
  type             = "SecureString"
  key_id           = var.core.kms_key_arn
  value_wo         = var.db_app_password
  value_wo_version = var.secrets_version
}

locals {
  db_parameters = {
    db_user            = var.aurora.master_username
    db_app_user        = "fp_app"
    db_endpoint        = aws_rds_cluster.aurora.endpoint
    db_reader_endpoint = aws_rds_cluster.aurora.reader_endpoint
  }
}

resource "aws_ssm_parameter" "db" {
  for_each = local.db_parameters

  name   = var.ssm_paths[each.key]
  type   = "SecureString"
  key_id = var.core.kms_key_arn
  value  = each.value
}
