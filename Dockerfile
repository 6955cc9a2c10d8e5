# One platform image for every entrypoint: `fp-platform ...`, the IG service, workers, Dagster.
# No secrets are baked in: they come from SSM (cloud profiles) or .fp/secrets (local) at run time.
# Reproducible: the dependencies are exactly uv.lock's, hash-checked; the local substrate's servers (the `local`
# extra: SeaweedFS, Tansu, embedded Postgres) are left out, since the cloud profiles use managed services.
FROM python:3.11-slim

# The image is tagged git-<sha> and says which commit it is: a build without the commit is refused.
ARG GIT_SHA
RUN test -n "${GIT_SHA}" && test "${GIT_SHA}" != unknown \
    || { echo "build with --build-arg GIT_SHA=\$(git rev-parse HEAD)" >&2; exit 1; }
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FP_GIT_SHA=${GIT_SHA} \
    FP_IMAGE_TAG=git-${GIT_SHA} \
    FP_STATE_DIR=/var/lib/fp

WORKDIR /app
COPY pyproject.toml uv.lock README.md workspace.yaml dagster.yaml ./
COPY fp_platform ./fp_platform
# uv stays in the image: P(-1) runs `uv lock --check` against the lock it was built from.
# `uv export --locked` refuses a lock that no longer matches pyproject.toml; pip then installs exactly the
# exported pins and refuses any file whose hash differs; the project itself goes in without dependencies.
RUN pip install --no-cache-dir "uv==0.13.9" \
    && uv export --locked --no-emit-project --no-header --format requirements-txt -o /tmp/requirements.txt \
    && pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps . \
    && rm /tmp/requirements.txt \
    && useradd --system --home /var/lib/fp fp && mkdir -p /var/lib/fp && chown fp /var/lib/fp

USER fp
# The smoke (run-process P(-1).6.2) at build time: Definitions load, handles resolve, entrypoints exist, no secrets.
RUN FP_STATE_DIR=/tmp/fp-smoke fp-platform smoke
# No ENTRYPOINT: every task and pod names its whole command line. Dagster's EcsRunLauncher registers run tasks
# with an empty entryPoint and `dagster api execute_run ...` as the command, and Pipes overrides the command of a
# job task with `python -m <module> <job> ...`: an image ENTRYPOINT would be prepended to both.
CMD ["fp-platform", "--help"]
