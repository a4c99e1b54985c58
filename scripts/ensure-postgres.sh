#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 for the tests (user postgres, database test).
# Safe to run again. Where it cannot install (not root, no apt), it says so and the PostgreSQL
# tests skip -- or fail under CI=true, where nothing may skip.
set -euo pipefail

answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if answers; then
    echo "PostgreSQL answers on 127.0.0.1:5432"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "PostgreSQL is not running on 127.0.0.1:5432 and this script can only install it as root on Debian;"
    echo "its tests will skip (and fail under CI=true). Set CLAWFLEET_TEST_POSTGRES_URL to use another server."
    exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main >/dev/null
fi
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q "clawfleet-tests" "$hba"; then
    # Test machines only: the tests connect as postgres over TCP without a password.
    sed -i '1i host all postgres 127.0.0.1/32 trust # clawfleet-tests' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || \
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 1 30); do answers && break; sleep 1; done
answers || { echo "PostgreSQL did not start"; exit 1; }
if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    runuser -u postgres -- createdb test
fi
echo "PostgreSQL $version started on 127.0.0.1:5432"
