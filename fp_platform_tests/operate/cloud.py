"""The dev_min profile against moto, in process: fake credentials, the account moto answers as, and the
substrate Terraform demo would leave (suffixed buckets, every SSM parameter the profile names, the ECS
cluster with one service per spine worker). Shared by the unit tests of P0, teardown, the ECS supervisor
and the cloud client paths."""

from __future__ import annotations

from fp_platform.handles import Handles
from fp_platform.operate.packs import daemon_specs
from fp_platform.operate.substrate_ready import secret_path_keys
from fp_platform.substrate import residuals

ACCOUNT = "123456789012"  # moto's default account
UNREACHABLE_DB = "db.invalid"  # RFC 6761: never resolves, so the probe fails at once
UNREACHABLE_BROKER = "127.0.0.1:9"  # discard port: nothing speaks Kafka there
RUN = "platform_20261130T010203Z"  # the run Terraform demo was applied for


def seed_substrate(h: Handles, services_desired: int = 1, run_id: str = RUN) -> dict[str, str]:
    """What core + demo leave for a run: buckets, SSM parameters, the ECS cluster and its services (their task
    definition scoped to `run_id`, as demo's `platform_run_id` scopes it)."""
    s3 = residuals.aws_client(h, "s3")
    for bucket in h.buckets().values():
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": h.get("AWS_REGION")})
    ec2 = residuals.aws_client(h, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    values = {
        "SSM_DB_ENDPOINT_PATH": UNREACHABLE_DB,
        "SSM_CONFLUENT_BOOTSTRAP_PATH": UNREACHABLE_BROKER,
        "SSM_CONFLUENT_API_KEY_PATH": "CONFLUENTKEY",
        "SSM_CONFLUENT_API_SECRET_PATH": "confluent-secret",
        "SSM_DB_APP_USER_PATH": "fp_app",
        "SSM_SUBNET_IDS_PUBLIC_PATH": subnet,
        "SSM_SECURITY_GROUP_ID_APP_PATH": sg,
    }
    ssm = residuals.aws_client(h, "ssm")
    for key in secret_path_keys(h):
        ssm.put_parameter(Name=h.get(key), Value=values.get(key, f"value-of-{key.lower()}"), Type="SecureString")
    ecs = residuals.aws_client(h, "ecs")
    ecs.create_cluster(clusterName=h.get("ECS_CLUSTER_NAME"))
    container = {
        "name": "main",
        "image": "platform@sha256:" + "ab" * 32,
        "memory": 1024,
        "environment": [{"name": h.get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY"), "value": run_id}],
    }
    td = ecs.register_task_definition(family="fp-worker", containerDefinitions=[container])["taskDefinition"][
        "taskDefinitionArn"
    ]
    for spec in daemon_specs(h):
        ecs.create_service(
            cluster=h.get("ECS_CLUSTER_NAME"),
            serviceName=residuals.ecs_service_name(h, spec.component),
            taskDefinition=td,
            desiredCount=services_desired,
            tags=[{"key": "project", "value": "fraud-platform"}, {"key": "env", "value": "dev_min"}],
        )
    return {"vpc": vpc, "subnet": subnet, "sg": sg}


def nat_gateway(h: Handles, subnet: str) -> str:
    ec2 = residuals.aws_client(h, "ec2")
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"]


def tagged_rds(h: Handles, ident: str = "leftover-db") -> str:
    residuals.aws_client(h, "rds").create_db_instance(
        DBInstanceIdentifier=ident,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="fp_admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        Tags=[{"Key": "project", "Value": "fraud-platform"}, {"Key": "env", "Value": "dev_min"}],
    )
    return ident
