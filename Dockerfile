# syntax=docker/dockerfile:1
# opsctl as a container image, for cron (Kubernetes CronJobs, GitHub Actions, plain cron):
#
#   docker build -t opsctl .
#   docker run --rm -e DATABASE_URL opsctl check -o json
#
# Stage 1 builds the package exactly as it is published (npm pack); stage 2 installs that
# tarball without dev dependencies and runs it as a non-root user. The image holds no source.

# ---- build: the packed tarball ----
FROM node:20.19-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The dev dependencies (TypeScript, esbuild) build the bundle; --ignore-scripts: the build runs once, below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build && npm pack --ignore-scripts

# ---- runtime: the tarball installed with its runtime dependencies only ----
FROM node:20.19-bookworm-slim AS runtime
LABEL org.opencontainers.image.title="opsctl" \
      org.opencontainers.image.description="Triage drift and stuck work in PostgreSQL-backed systems and AWS EventBridge Scheduler" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/OWNER/opsctl"
# NODE_ENV: npm installs no dev dependency. OPSCTL_STATE_DIR: the audit journal and lock files
# (docs/safety.md); mount a volume there (an emptyDir with a read-only root file system).
ENV NODE_ENV=production \
    OPSCTL_STATE_DIR=/var/lib/opsctl \
    NO_UPDATE_NOTIFIER=1
COPY --from=build /src/opsctl-*.tgz /tmp/
RUN npm install --global --omit=dev --no-audit --no-fund /tmp/opsctl-*.tgz \
 && rm -f /tmp/opsctl-*.tgz \
 && npm cache clean --force
RUN groupadd --gid 10001 opsctl \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/opsctl --shell /usr/sbin/nologin opsctl \
 && mkdir -p /var/lib/opsctl \
 && chown 10001:10001 /var/lib/opsctl \
 && chmod 0700 /var/lib/opsctl
USER 10001:10001
WORKDIR /var/lib/opsctl
ENTRYPOINT ["opsctl"]
CMD ["--help"]
