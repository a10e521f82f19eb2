#!/bin/bash
# Two databases on one server: Airflow's metadata and the ETL warehouse, each
# owned by its own role (passwords from the compose environment).
set -euo pipefail
psql -v ON_ERROR_STOP=1 -U postgres \
  -v airflow_pw="${AIRFLOW_DB_PASSWORD:?}" -v obs_pw="${OBS_DB_PASSWORD:?}" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE obs LOGIN PASSWORD :'obs_pw';
CREATE DATABASE obs OWNER obs;
SQL
# The optional extensions need a superuser; create them in the warehouse so the
# obs role's bootstrap finds them (see README "Compatibility").
psql -v ON_ERROR_STOP=1 -U postgres -d obs <<'SQL'
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE EXTENSION IF NOT EXISTS age;
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gist;
GRANT USAGE ON SCHEMA ag_catalog TO obs;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ag_catalog TO obs;
SQL
