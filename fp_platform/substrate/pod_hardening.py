"""The hardening every platform pod carries on Kubernetes (dev_full): the packs' Deployments
(`operate/k8s.py`) and the one-shot jobs' pods (`resources.k8s_job_params`) take it from here, so the two
never drift apart."""

from __future__ import annotations

from typing import Any

from fp_platform.substrate.paths import STATE_DIR_ENV_VAR

STATE_MOUNT = "/var/lib/fp"  # FP_STATE_DIR in the image (Dockerfile): the probe file and local state
RUN_AS = 10001  # a high UID outside the node's range (the image's `fp` user is a low system UID)


def pod_security() -> dict[str, Any]:
    """Pod-level securityContext: a non-root high UID, the runtime's default seccomp profile, and an fsGroup so
    the emptyDir volumes are writable by that UID."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """Container securityContext: read-only root filesystem, no privilege escalation, every capability dropped."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def writable_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, str]]]:
    """(volumes, mounts, env) for the only paths a worker writes on a read-only root: /tmp (temp files, the
    world's pod scratch ORACLE_SYNC_SOURCE_PATTERN) and FP_STATE_DIR (the probe file), also HOME."""
    volumes = [
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "state", "emptyDir": {"sizeLimit": "256Mi"}},
    ]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "state", "mountPath": STATE_MOUNT}]
    env = [{"name": STATE_DIR_ENV_VAR, "value": STATE_MOUNT}, {"name": "HOME", "value": STATE_MOUNT}]
    return volumes, mounts, env
