#!/bin/sh
# Run once by the official postgres image, when its volume is first initialised: the roster's DuckLake catalog
# gets its own database and role (`roster`), apart from Dagster's run storage (`$POSTGRES_DB`). The password comes
# from the environment (ROSTER_CATALOG_PASSWORD), never from this file.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v roster_password="$ROSTER_CATALOG_PASSWORD" <<'SQL'
CREATE ROLE roster LOGIN PASSWORD :'roster_password';
CREATE DATABASE roster OWNER roster;
SQL
