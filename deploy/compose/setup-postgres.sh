#!/bin/sh
# One-shot schema set-up of Temporal's two PostgreSQL databases (docker-compose.yml service temporal-schema, image
# temporalio/admin-tools), as Temporal's own compose examples do it now that the auto-setup image is deprecated.
# Safe to run again: `create` keeps a database that exists, and `update-schema` applies only what is missing.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS must name the PostgreSQL host}"
: "${POSTGRES_USER:?POSTGRES_USER must be set}"
: "${SQL_PASSWORD:?SQL_PASSWORD must be set (temporal-sql-tool reads the password from it)}"
PORT="${DB_PORT:-5432}"
SCHEMA="${TEMPORAL_HOME:-/etc/temporal}/schema/postgresql/v12"

echo "temporal-schema: waiting for PostgreSQL on ${POSTGRES_SEEDS}:${PORT}"
i=1
until nc -z -w 5 "$POSTGRES_SEEDS" "$PORT"; do
  if [ "$i" -ge 60 ]; then
    echo "temporal-schema: PostgreSQL did not answer on ${POSTGRES_SEEDS}:${PORT}" >&2
    exit 1
  fi
  i=$((i + 1))
  sleep 2
done

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" "$@"
}
for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  echo "temporal-schema: database ${db}"
  sql --db "$db" create
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "${SCHEMA}/${dir}/versioned"
done
echo 'temporal-schema: done'
