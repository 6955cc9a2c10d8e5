# core's `core` output, written by the operator to core.auto.tfvars.json (infra/terraform/README.md): the
# stacks share ids through it, not through a remote-state read, so each plans and destroys on its own.
variable "core" {
  description = "dev_full/core's `core` output."
  type = object({
    vpc_id             = string
    vpc_cidr_block     = string
    private_subnet_ids = list(string)
    route_table_id     = string
    sg_app_id          = string
    sg_db_id           = string
    kms_key_arn        = string
    ecr_repository_url = string
    tf_state_bucket    = string
    tf_lock_table      = string
  })
}
