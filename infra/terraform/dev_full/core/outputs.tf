# One object the other four stacks take as their `core` variable (no remote-state read, so each stack plans
# and destroys on its own): `echo "{\"core\": $(terraform output -json core)}" > ../<stack>/core.auto.tfvars.json`.
output "core" {
  description = "What streaming, runtime, data_ml and ops need from core (nothing secret)."
  value = {
    vpc_id             = aws_vpc.platform.id
    vpc_cidr_block     = aws_vpc.platform.cidr_block
    private_subnet_ids = aws_subnet.private[*].id
    route_table_id     = aws_route_table.private.id
    sg_app_id          = aws_security_group.app.id
    sg_db_id           = aws_security_group.db.id
    kms_key_arn        = aws_kms_key.platform.arn
    ecr_repository_url = aws_ecr_repository.platform.repository_url
    tf_state_bucket    = aws_s3_bucket.this["tfstate"].bucket
    tf_lock_table      = aws_dynamodb_table.tf_lock.name
  }
}

output "bucket_names" {
  description = "Rendered bucket names (stem-account-region) by short name, tfstate included."
  value       = local.buckets
}
