# What a run's handles need from the demo stack. The database endpoint and network ids are not secret
# but are also in SSM; secrets are never outputs here (they are write-only).
output "ecs_cluster_arn" {
  description = "The demo ECS cluster."
  value       = aws_ecs_cluster.demo.arn
}

output "service_names" {
  description = "ECS services by name (one replica each)."
  value       = sort(keys(aws_ecs_service.this))
}

output "task_definition_arns" {
  description = "Task definition ARNs by family (services and one-shot jobs)."
  value       = { for k, t in aws_ecs_task_definition.this : k => t.arn }
}

output "db_endpoint" {
  description = "RDS endpoint (host), also at SSM_DB_ENDPOINT_PATH."
  value       = aws_db_instance.demo.address
}

output "network" {
  description = "VPC, public subnets and security groups, also in SSM under network/."
  value = {
    vpc_id            = aws_vpc.demo.id
    subnet_ids_public = aws_subnet.public[*].id
    sg_app_id         = aws_security_group.app.id
    sg_db_id          = aws_security_group.db.id
  }
}
