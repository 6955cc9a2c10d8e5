# The demo's compute (run-process §1.3: nothing on the laptop): one ECS cluster, one Fargate service
# per spine worker plus the Dagster webserver and daemon (one replica each, never two at once), and one
# task definition per one-shot job. Every container runs the platform image by digest.

resource "aws_ecs_cluster" "demo" {
  name = var.ecs_cluster_name
}

resource "aws_ecs_cluster_capacity_providers" "demo" {
  cluster_name       = aws_ecs_cluster.demo.name
  capacity_providers = ["FARGATE"]
}

# Private DNS for the IG (IG_BASE_URL) in place of a load balancer (docs/decisions.md D4).
resource "aws_service_discovery_private_dns_namespace" "demo" {
  name = var.service_discovery_namespace
  vpc  = aws_vpc.demo.id
}

resource "aws_service_discovery_service" "this" {
  for_each = { for name, s in var.services : name => s if s.discovery_name != null }

  name = each.value.discovery_name
  dns_config {
    namespace_id = aws_service_discovery_private_dns_namespace.demo.id
    dns_records {
      type = "A"
      ttl  = 10
    }
    routing_policy = "MULTIVALUE"
  }
}

locals {
  # FP_AWS_ACCOUNT_ID: the runtime renders core's bucket names <stem>-<account>-<region> (docs/decisions.md D10)
  base_env    = concat([for k, v in var.container_env : { name = k, value = v }], [{ name = "FP_AWS_ACCOUNT_ID", value = var.aws_account_id }])
  service_env = concat(local.base_env, [{ name = var.run_id_env_key, value = var.platform_run_id }])

  task_definitions = merge(
    { for name, s in var.services : name => {
      role      = s.role
      log_group = s.log_group
      command   = s.command
      port      = s.port
      health    = s.health_path
      env       = local.service_env
    } },
    { for family, j in var.jobs : family => {
      role      = j.role
      log_group = j.log_group
      command   = j.command # Pipes jobs: none (each launch's override); migrations: its command
      port      = null
      health    = null
      env       = local.base_env
    } },
  )
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.task_definitions

  family                   = each.key
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.ecs_task_cpu)
  memory                   = tostring(var.ecs_task_memory_mib)
  execution_role_arn       = local.role_arns["ecs_task_execution"]
  task_role_arn            = local.role_arns[each.value.role]

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([merge(
    {
      name        = "main"
      image       = local.image
      essential   = true
      environment = each.value.env
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = "${var.log_group_prefix}${each.value.log_group}"
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = each.key
        }
      }
      portMappings = each.value.port == null ? [] : [{ containerPort = each.value.port, protocol = "tcp" }]
    },
    each.value.command == null ? {} : { command = each.value.command }, # the image has no ENTRYPOINT
    each.value.health == null ? {} : {
      healthCheck = { # the image has no curl: python's urllib asks the service's own health route
        command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${each.value.port}${each.value.health}', timeout=3)"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }
    },
  )])
}

resource "aws_ecs_service" "this" {
  for_each = var.services

  name            = each.key
  cluster         = aws_ecs_cluster.demo.id
  task_definition = aws_ecs_task_definition.this[each.key].arn
  desired_count   = 1
  launch_type     = "FARGATE"

  # Stop the old task before starting the new one: never two consumers of one group (spec P2.2).
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  network_configuration {
    subnets          = aws_subnet.public[*].id
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = var.ecs_assign_public_ip
  }

  dynamic "service_registries" {
    for_each = each.value.discovery_name == null ? [] : [aws_service_discovery_service.this[each.key].arn]
    content {
      registry_arn = service_registries.value
    }
  }

  propagate_tags = "SERVICE"
}
