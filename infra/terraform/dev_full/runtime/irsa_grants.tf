# What each workload role may touch (run-process App. C; DA-full §10.2 role per service, no shared admin
# role): buckets it reads (s3_read) or appends to (s3_write: get + put, never delete: truth is write-once),
# SSM parameters it reads, Kafka topics it writes (topic_write; every role that uses the bus reads fp.bus.*),
# its consumer groups (group prefixes under fp.dev_full.), and its extra rights (flags below).
locals {
  ssm_db  = ["db_endpoint", "db_reader_endpoint", "db_app_user", "db_app_password"]
  ssm_bus = ["msk_bootstrap_brokers"]

  grants = {
    dagster_orchestrator = { # gates read/write every bucket (P0 proves them writable), launch pods and SageMaker jobs, create topics
      s3_read     = []
      s3_write    = ["oracle", "archive", "quarantine", "evidence", "artifacts"]
      ssm         = concat(local.ssm_bus, local.ssm_db, ["vpc_id", "subnet_ids_private", "sg_app_id", "sagemaker_model_exec_role_arn"])
      topic_write = ["fp.bus.control.v1", "fp.bus.learning.ofs.requests.v1", "fp.bus.learning.mf.requests.v1"]
      groups      = ["operate."]
    }
    oracle_job = { # P3: oracle seed/sort/checker; never publishes
      s3_read     = []
      s3_write    = ["oracle", "evidence"]
      ssm         = []
      topic_write = []
      groups      = []
    }
    sr_task = { # P5: reads oracle readiness, publishes READY, holds its lease in Postgres
      s3_read     = ["oracle"]
      s3_write    = ["evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db)
      topic_write = ["fp.bus.control.v1"]
      groups      = ["operate."]
    }
    wsp_task = { # P6: stream_view → IG; never writes Kafka directly
      s3_read     = ["oracle"]
      s3_write    = ["evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db, ["ig_api_key"])
      topic_write = []
      groups      = ["control_ingress.", "operate."]
    }
    ig_service = { # writer boundary: traffic and context topics, receipts (archive), quarantine
      s3_read     = []
      s3_write    = ["archive", "quarantine", "evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db, ["ig_api_key"])
      topic_write = [for t in var.topics : t if startswith(t, "fp.bus.traffic.") || startswith(t, "fp.bus.context.")]
      groups      = ["control_ingress.", "operate."]
    }
    rtdl_core = { # archive writer, IEG, the decision processor (CSFB/OFP/DL/DF, decisions.md D3); DF scores on SageMaker
      s3_read     = ["artifacts"]
      s3_write    = ["archive", "evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db)
      topic_write = ["fp.bus.rtdl.v1"]
      groups      = ["rtdl_core."]
    }
    decision_lane = { # AL, DLA (append-only audit)
      s3_read     = ["artifacts"]
      s3_write    = ["archive", "evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db)
      topic_write = ["fp.bus.rtdl.v1", "fp.bus.audit.v1"]
      groups      = ["rtdl_decision_lane."]
    }
    case_labels = { # case trigger, CM, LS, label simulation
      s3_read     = ["oracle"]
      s3_write    = ["evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db)
      topic_write = ["fp.bus.case.triggers.v1", "fp.bus.labels.events.v1"]
      groups      = ["case_labels."]
    }
    reporter_single_writer = { # P11: reads everything run-scoped, writes closure evidence
      s3_read     = ["archive", "quarantine", "oracle"]
      s3_write    = ["evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db)
      topic_write = []
      groups      = ["obs_gov.", "operate."]
    }
    obs_gov_conformance = { # the environment conformance worker (not the reporter's role, App. C.3)
      s3_read     = []
      s3_write    = ["evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db)
      topic_write = []
      groups      = ["obs_gov."]
    }
    platform_base = { # the OTel collector (obs_gov namespace): its config, CloudWatch logs and metrics only
      s3_read     = []
      s3_write    = []
      ssm         = ["otel_collector_config"]
      topic_write = []
      groups      = []
    }
    learning_job = { # OFS/MF/MPR: Iceberg tables in Glue, bundles in artifacts, learning topics
      s3_read     = ["archive", "oracle"]
      s3_write    = ["artifacts", "evidence"]
      ssm         = concat(local.ssm_bus, local.ssm_db)
      topic_write = [for t in var.topics : t if startswith(t, "fp.bus.learning.")]
      groups      = ["learning."]
    }
  }

  # Extra rights by role (each a statement in irsa.tf)
  launches_workloads = ["dagster_orchestrator"]
  invokes_endpoint   = ["rtdl_core"]
  writes_catalog     = ["learning_job"]
  writes_telemetry   = ["platform_base"]
}
