# One platform image for every entrypoint: `fp-platform ...`, the IG service, workers, Dagster.
# No secrets are baked in: they come from SSM (cloud profiles) or .fp/secrets (local) at run time.
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
COPY pyproject.toml README.md workspace.yaml dagster.yaml ./
COPY fp_platform ./fp_platform
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/fp fp && mkdir -p /var/lib/fp && chown fp /var/lib/fp

USER fp
ENTRYPOINT ["fp-platform"]
CMD ["--help"]
