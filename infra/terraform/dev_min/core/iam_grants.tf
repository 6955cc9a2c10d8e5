# What each runtime role may touch (run-process App. C): buckets it reads (s3_read) or appends to
# (s3_write: get + put, never delete: truth is write-once), SSM parameters it reads. Kafka rights are
# Confluent ACLs (modules/confluent), database rights are tables (migrations), not IAM.
locals {
  # runtime roles read the application role's credentials (not superuser, owns nothing: issue 20); only the
  # migrations task reads the RDS master's, to migrate and to create the application role
  ssm_db        = ["db_app_user", "db_app_password", "db_endpoint"]
  ssm_db_master = ["db_user", "db_password", "db_endpoint"]
  ssm_confluent = ["confluent_bootstrap", "confluent_api_key", "confluent_api_secret"]

  grants = {
    oracle_job = { # P3: oracle seed/sort/checker; never publishes, never touches CM/LS
      s3_read  = []
      s3_write = ["oracle", "evidence"]
      ssm      = []
    }
    sr_task = { # P5: reads oracle readiness, publishes READY, holds its lease in Postgres
      s3_read  = ["oracle"]
      s3_write = ["evidence"]
      ssm      = concat(local.ssm_confluent, local.ssm_db)
    }
    wsp_task = { # P6: stream_view → IG; never writes quarantine or Kafka directly
      s3_read  = ["oracle"]
      s3_write = ["evidence"]
      ssm      = concat(local.ssm_confluent, local.ssm_db, ["ig_api_key"])
    }
    ig_service = { # writer boundary: receipts (archive), quarantine, evidence
      s3_read  = []
      s3_write = ["archive", "quarantine", "evidence"]
      ssm      = concat(local.ssm_confluent, local.ssm_db, ["ig_api_key"])
    }
    rtdl_core = { # archive writer, IEG, the decision processor (hosts CSFB/OFP/DL/DF, decisions.md D3)
      s3_read  = ["artifacts"]
      s3_write = ["archive", "evidence"]
      ssm      = concat(local.ssm_confluent, local.ssm_db)
    }
    decision_lane = { # AL, DLA (append-only audit segments in archive)
      s3_read  = ["artifacts"]
      s3_write = ["archive", "evidence"]
      ssm      = concat(local.ssm_confluent, local.ssm_db)
    }
    case_labels = { # case trigger, CM, LS, label simulation (reads oracle truth)
      s3_read  = ["oracle"]
      s3_write = ["evidence"]
      ssm      = concat(local.ssm_confluent, local.ssm_db)
    }
    reporter_single_writer = { # P11: reads everything run-scoped, writes closure evidence
      s3_read  = ["archive", "quarantine", "oracle"]
      s3_write = ["evidence"]
      ssm      = concat(local.ssm_confluent, local.ssm_db)
    }
    obs_gov_conformance = { # environment conformance worker
      s3_read  = []
      s3_write = ["evidence"]
      ssm      = concat(local.ssm_confluent, local.ssm_db)
    }
    learning_job = { # OFS/MF/MPR jobs (not part of Spine Green)
      s3_read  = ["archive", "oracle"]
      s3_write = ["artifacts", "evidence"]
      ssm      = local.ssm_db
    }
    db_migrations = { # schema migrations and the application role: the database only
      s3_read  = []
      s3_write = []
      ssm      = distinct(concat(local.ssm_db_master, local.ssm_db))
    }
    dagster_orchestrator = { # gates read and write every bucket (P0 proves them writable); launches tasks
      s3_read  = []
      s3_write = keys(var.bucket_stems)
      ssm      = keys(var.ssm_paths)
    }
  }
}
