#!/usr/bin/env bash
# Makes sure a PostgreSQL server runs on 127.0.0.1:5432 with a superuser
# for the tests, installing Debian's package when it is missing. Prints the
# URL to export as PGMIGRATE_TEST_POSTGRES.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
  pg_createcluster "$version" main >&2
fi
cluster=$(pg_lsclusters -h | head -1 | awk '{print $1" "$2}')
if ! pg_lsclusters -h | head -1 | grep -q online; then
  pg_ctlcluster $cluster start >&2
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qAt" >&2 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgmigrate') THEN
    CREATE ROLE pgmigrate LOGIN SUPERUSER PASSWORD 'pgmigrate-test';
  END IF;
END $$;
SQL
port=$(pg_lsclusters -h | head -1 | awk '{print $3}')
echo "postgres://pgmigrate:pgmigrate-test@127.0.0.1:${port}/postgres"
