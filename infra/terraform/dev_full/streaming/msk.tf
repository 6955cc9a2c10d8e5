# MSK Serverless with SASL/IAM (DA-full §5.1.2, §5.1.1, §9.3) in the private subnets. Topics are not
# Terraform resources (the AWS provider has none for MSK): the platform creates them with the pinned
# partitions and retention (`bus.ensure_topics`, issue 24 item 4) under ROLE_DAGSTER_ORCHESTRATOR.
# Billed by the hour: apply for a proving window, destroy after (DA-full §5.2.4, §14.2).

resource "aws_security_group" "msk" {
  #checkov:skip=CKV2_AWS_5:attached to aws_msk_serverless_cluster below, which checkov's graph does not link; DA-full §5.1.1
  name        = "${local.name_prefix}-msk"
  description = "MSK Serverless of the platform"
  vpc_id      = var.core.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "msk_from_app" {
  security_group_id            = aws_security_group.msk.id
  description                  = "Kafka SASL/IAM from the workloads"
  ip_protocol                  = "tcp"
  from_port                    = var.msk_iam_port
  to_port                      = var.msk_iam_port
  referenced_security_group_id = var.core.sg_app_id
}

resource "aws_msk_serverless_cluster" "platform" {
  cluster_name = var.msk_cluster_name

  vpc_config {
    subnet_ids         = var.core.private_subnet_ids
    security_group_ids = [aws_security_group.msk.id]
  }

  client_authentication {
    sasl {
      iam {
        enabled = true
      }
    }
  }
}

resource "aws_ssm_parameter" "bootstrap_brokers" {
  name   = var.ssm_paths["msk_bootstrap_brokers"]
  type   = "SecureString"
  key_id = var.core.kms_key_arn
  value  = aws_msk_serverless_cluster.platform.bootstrap_brokers_sasl_iam
}

output "msk_cluster_arn" {
  description = "The cluster ARN (clients read the brokers from SSM_MSK_BOOTSTRAP_BROKERS_PATH)."
  value       = aws_msk_serverless_cluster.platform.arn
}
