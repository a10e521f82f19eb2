-- Observability ETL Suite: schema bootstrap (design §3, CONTRACT names).
--
-- Idempotent: every statement is "create if absent", so a second run changes
-- nothing. Runs as ONE transaction (the caller, obs-etl bootstrap, commits).
-- Optional extensions (timescaledb, age, vector, and the contrib modules
-- pg_trgm / btree_gist) are created only when the server offers them and the
-- role may create them; whatever is skipped is announced with a NOTICE that
-- starts with "obs-bootstrap:" so callers can report it. Without an extension
-- the schema degrades: plain tables instead of hypertables, real[] embeddings
-- without HNSW, no AGE graph, no trigram index, no EXCLUDE constraint.
--
-- Session settings read here (all optional):
--   obs.skip_extensions  comma-separated extensions NOT to create (e.g. 'timescaledb,age')

-- Two concurrent bootstraps of one database wait for each other instead of racing.
SELECT pg_advisory_xact_lock(hashtextextended('obs-etl bootstrap', 0));

-- ---------------------------------------------------------------------------
-- Extensions
-- ---------------------------------------------------------------------------
DO $obs$
DECLARE
  ext text;
  reason text;
  skip text[] := string_to_array(replace(coalesce(current_setting('obs.skip_extensions', true), ''), ' ', ''), ',');
  is_super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
  is_trusted boolean;
BEGIN
  FOREACH ext IN ARRAY ARRAY['pg_trgm', 'btree_gist', 'timescaledb', 'vector', 'age'] LOOP
    CONTINUE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = ext);
    reason := NULL;
    SELECT bool_or(v.trusted) INTO is_trusted
      FROM pg_available_extension_versions v WHERE v.name = ext;
    IF ext = ANY (skip) THEN
      reason := 'disabled by obs.skip_extensions';
    ELSIF is_trusted IS NULL THEN
      reason := 'not available on this server';
    ELSIF NOT is_super AND NOT is_trusted THEN
      reason := 'not a trusted extension and role ' || current_user || ' is not a superuser';
    ELSE
      BEGIN
        EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I', ext);
      EXCEPTION WHEN OTHERS THEN
        reason := 'CREATE EXTENSION failed: ' || SQLERRM;
      END;
    END IF;
    IF reason IS NOT NULL THEN
      RAISE NOTICE 'obs-bootstrap: skipped extension %: %', ext, reason;
    END IF;
  END LOOP;
END
$obs$;

-- ---------------------------------------------------------------------------
-- Schema version
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS obs_schema_version (
  version     integer PRIMARY KEY,
  description text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------
-- Dimensions
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS dim_tenant (
  id         bigserial PRIMARY KEY,
  code       text NOT NULL UNIQUE,
  name       text,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS dim_resource (
  id         bigserial PRIMARY KEY,
  tenant_id  bigint NOT NULL REFERENCES dim_tenant (id),
  urn        text NOT NULL,
  type       text,
  labels     jsonb NOT NULL DEFAULT '{}'::jsonb,
  first_seen timestamptz,
  last_seen  timestamptz,
  CONSTRAINT dim_resource_tenant_urn_key UNIQUE (tenant_id, urn)
);
CREATE INDEX IF NOT EXISTS dim_resource_labels_gin ON dim_resource USING gin (labels);

-- Where the raw records of one stream and window live in OpenObserve.
CREATE TABLE IF NOT EXISTS oo_locator (
  id           bigserial PRIMARY KEY,
  tenant_id    bigint NOT NULL REFERENCES dim_tenant (id),
  stream_type  text NOT NULL,
  stream       text NOT NULL,
  window_from  timestamptz NOT NULL,
  window_to    timestamptz NOT NULL,
  sql_hint     text,
  ui_url       text,
  object_keys  jsonb NOT NULL DEFAULT '[]'::jsonb,
  record_count bigint,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT oo_locator_window_key UNIQUE (tenant_id, stream_type, stream, window_from, window_to)
);

-- ---------------------------------------------------------------------------
-- Facts (hypertables on bucket when timescaledb is present)
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS metric_1m (
  bucket      timestamptz NOT NULL,
  tenant_id   bigint NOT NULL REFERENCES dim_tenant (id),
  resource_id bigint NOT NULL REFERENCES dim_resource (id),
  metric      text NOT NULL,
  kind        text,
  avg         double precision,
  max         double precision,
  p95         double precision,
  min         double precision,
  count       bigint,
  sum         double precision,
  locator_id  bigint,
  CONSTRAINT metric_1m_pkey PRIMARY KEY (bucket, tenant_id, resource_id, metric)
);

CREATE TABLE IF NOT EXISTS service_call_5m (
  bucket     timestamptz NOT NULL,
  tenant_id  bigint NOT NULL REFERENCES dim_tenant (id),
  src_id     bigint NOT NULL REFERENCES dim_resource (id),
  dst_id     bigint NOT NULL REFERENCES dim_resource (id),
  calls      bigint NOT NULL DEFAULT 0,
  errors     bigint NOT NULL DEFAULT 0,
  rps        double precision,
  err_rate   double precision,
  p50_ms     double precision,
  p95_ms     double precision,
  locator_id bigint,
  CONSTRAINT service_call_5m_pkey PRIMARY KEY (bucket, tenant_id, src_id, dst_id)
);

CREATE TABLE IF NOT EXISTS log_pattern (
  tenant_id   bigint NOT NULL REFERENCES dim_tenant (id),
  fingerprint text NOT NULL,
  template    text NOT NULL,
  severity    text,
  first_seen  timestamptz,
  last_seen   timestamptz,
  sample      text,
  CONSTRAINT log_pattern_pkey PRIMARY KEY (tenant_id, fingerprint)
);

-- Templates generalise as Drain learns: old fingerprints point at their successor.
CREATE TABLE IF NOT EXISTS log_pattern_alias (
  tenant_id       bigint NOT NULL REFERENCES dim_tenant (id),
  old_fingerprint text NOT NULL,
  new_fingerprint text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT log_pattern_alias_pkey PRIMARY KEY (tenant_id, old_fingerprint)
);

CREATE TABLE IF NOT EXISTS log_miner_state (
  tenant_id      bigint PRIMARY KEY REFERENCES dim_tenant (id),
  config_version text,
  state          bytea,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS log_pattern_5m (
  bucket      timestamptz NOT NULL,
  tenant_id   bigint NOT NULL REFERENCES dim_tenant (id),
  resource_id bigint NOT NULL REFERENCES dim_resource (id),
  fingerprint text NOT NULL,
  count       bigint NOT NULL DEFAULT 0,
  count_error bigint NOT NULL DEFAULT 0,
  locator_id  bigint,
  CONSTRAINT log_pattern_5m_pkey PRIMARY KEY (bucket, tenant_id, resource_id, fingerprint)
);

DO $obs$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    RAISE NOTICE 'obs-bootstrap: skipped feature hypertables: timescaledb is not installed (plain tables)';
    RETURN;
  END IF;
  -- migrate_data converts tables created earlier without timescaledb.
  PERFORM create_hypertable('metric_1m', by_range('bucket', INTERVAL '1 day'),
                            if_not_exists => true, migrate_data => true);
  PERFORM create_hypertable('service_call_5m', by_range('bucket', INTERVAL '7 days'),
                            if_not_exists => true, migrate_data => true);
  PERFORM create_hypertable('log_pattern_5m', by_range('bucket', INTERVAL '7 days'),
                            if_not_exists => true, migrate_data => true);
END
$obs$;

DO $obs$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    CREATE INDEX IF NOT EXISTS log_pattern_template_trgm ON log_pattern USING gin (template gin_trgm_ops);
  ELSE
    RAISE NOTICE 'obs-bootstrap: skipped feature trigram_index: pg_trgm is not installed';
  END IF;
END
$obs$;

-- ---------------------------------------------------------------------------
-- Topology: one row per interval in which an edge existed.
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS topo_edge_time (
  id        bigserial PRIMARY KEY,
  tenant_id bigint NOT NULL REFERENCES dim_tenant (id),
  src_id    bigint NOT NULL REFERENCES dim_resource (id),
  dst_id    bigint NOT NULL REFERENCES dim_resource (id),
  edge_type text NOT NULL,
  source    text NOT NULL,
  valid     tstzrange NOT NULL CHECK (NOT isempty(valid)),
  props     jsonb NOT NULL DEFAULT '{}'::jsonb
);

DO $obs$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'topo_edge_time_no_overlap'
                                           AND conrelid = 'topo_edge_time'::regclass) THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
    ALTER TABLE topo_edge_time ADD CONSTRAINT topo_edge_time_no_overlap EXCLUDE USING gist (
      tenant_id WITH =, src_id WITH =, dst_id WITH =, edge_type WITH =, source WITH =, valid WITH &&);
  ELSE
    -- Without btree_gist a range-only GiST index still serves "as of" queries.
    CREATE INDEX IF NOT EXISTS topo_edge_time_valid_gist ON topo_edge_time USING gist (valid);
    RAISE NOTICE 'obs-bootstrap: skipped feature exclude_constraint: btree_gist is not installed';
  END IF;
END
$obs$;
CREATE INDEX IF NOT EXISTS topo_edge_time_open_idx ON topo_edge_time (tenant_id, src_id, dst_id)
  WHERE upper_inf(valid);

-- ---------------------------------------------------------------------------
-- Knowledge base (runbooks) with embeddings
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS kb_doc (
  id         bigserial PRIMARY KEY,
  tenant_id  bigint NOT NULL REFERENCES dim_tenant (id),
  title      text NOT NULL,
  body       text,
  source_uri text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

DO $obs$
DECLARE
  has_vector boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector');
BEGIN
  IF to_regclass('kb_chunk') IS NULL THEN
    EXECUTE format($ddl$
      CREATE TABLE kb_chunk (
        id        bigserial PRIMARY KEY,
        tenant_id bigint NOT NULL REFERENCES dim_tenant (id),
        doc_id    bigint NOT NULL REFERENCES kb_doc (id) ON DELETE CASCADE,
        chunk_no  integer NOT NULL,
        text      text NOT NULL,
        embedding %s,
        CONSTRAINT kb_chunk_doc_chunk_key UNIQUE (doc_id, chunk_no)
      )$ddl$, CASE WHEN has_vector THEN 'vector(384)' ELSE 'real[]' END);
  ELSIF has_vector AND (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                         WHERE attrelid = 'kb_chunk'::regclass AND attname = 'embedding') = 'real[]' THEN
    -- pgvector arrived after a degraded bootstrap: upgrade the column in place. The tenant
    -- readers' view of kb_chunk depends on the column's type; it is recreated (and granted
    -- again) at the end of this file.
    DROP VIEW IF EXISTS obs_reader.kb_chunk;
    ALTER TABLE kb_chunk ALTER COLUMN embedding TYPE vector(384) USING embedding::vector(384);
  END IF;
  IF has_vector THEN
    CREATE INDEX IF NOT EXISTS kb_chunk_embedding_hnsw ON kb_chunk USING hnsw (embedding vector_cosine_ops);
  ELSE
    RAISE NOTICE 'obs-bootstrap: skipped feature hnsw_index: vector is not installed (kb_chunk.embedding is real[])';
  END IF;
END
$obs$;
CREATE INDEX IF NOT EXISTS kb_chunk_tenant_doc_idx ON kb_chunk (tenant_id, doc_id);

-- ---------------------------------------------------------------------------
-- Events and their evidence
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS event_envelope (
  id        bigserial PRIMARY KEY,
  tenant_id bigint NOT NULL REFERENCES dim_tenant (id),
  kind      text NOT NULL,
  time      timestamptz NOT NULL,
  payload   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS event_envelope_time_idx ON event_envelope (time DESC);
CREATE INDEX IF NOT EXISTS event_envelope_tenant_time_idx ON event_envelope (tenant_id, time DESC);

-- Polymorphic links: a Postgres row (table + key, hashed for uniqueness) and/or an OO locator.
CREATE TABLE IF NOT EXISTS evidence_link (
  id           bigserial PRIMARY KEY,
  tenant_id    bigint NOT NULL REFERENCES dim_tenant (id),
  event_id     bigint NOT NULL REFERENCES event_envelope (id) ON DELETE CASCADE,
  dim          text NOT NULL,
  ref_pg_table text,
  ref_pg_key   jsonb,
  ref_pg_hash  text NOT NULL DEFAULT '',
  ref_oo       bigint REFERENCES oo_locator (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS evidence_link_ref_key
  ON evidence_link (event_id, dim, ref_pg_hash, coalesce(ref_oo, 0));

-- ---------------------------------------------------------------------------
-- Ledger: one row per (job, tenant, window), every attempt counted.
-- ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS etl_job_run (
  id          bigserial PRIMARY KEY,
  job         text NOT NULL,
  tenant_id   bigint NOT NULL REFERENCES dim_tenant (id),
  window_from timestamptz NOT NULL,
  window_to   timestamptz NOT NULL,
  status      text NOT NULL CHECK (status IN ('queued', 'running', 'success', 'failed', 'skipped')),
  attempts    integer NOT NULL DEFAULT 0,
  rows_in     bigint,
  rows_out    bigint,
  started_at  timestamptz,
  finished_at timestamptz,
  duration_ms double precision,
  error       text,
  dag_id      text,
  run_id      text,
  try_number  integer,
  details     jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT etl_job_run_window_key UNIQUE (job, tenant_id, window_from, window_to),
  CONSTRAINT etl_job_run_window_order CHECK (window_from < window_to)
);
-- What a successful oo-agg window read (per stream: its files and their rows in the range), so
-- late-arriving records are found without re-reading counted data (obs-etl reconcile). Added after
-- the first release: ADD COLUMN IF NOT EXISTS upgrades an existing ledger in place.
ALTER TABLE etl_job_run ADD COLUMN IF NOT EXISTS source_digest jsonb;
CREATE INDEX IF NOT EXISTS etl_job_run_status_idx ON etl_job_run (status, updated_at DESC)
  WHERE status IN ('failed', 'running');
CREATE INDEX IF NOT EXISTS etl_job_run_job_tenant_idx ON etl_job_run (job, tenant_id, window_to DESC);

-- Circuit breaker per (job, tenant), used by the DAGs' tenant selection. Failures
-- are counted from etl_job_run rows updated after reset_at; a clear of the
-- selection task (try_number > 1) or a new config_hash moves reset_at to now().
CREATE TABLE IF NOT EXISTS etl_circuit_breaker (
  job                  text NOT NULL,
  tenant_id            bigint NOT NULL REFERENCES dim_tenant (id),
  config_hash          text NOT NULL,
  reset_at             timestamptz NOT NULL DEFAULT '-infinity',
  opened_at            timestamptz,
  consecutive_failures integer NOT NULL DEFAULT 0,
  last_error           text,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job, tenant_id)
);

-- The active call graph's refresh state and its relational twin (issue 5; written by
-- sql/age_refresh.sql). The graph is the latest state: age_refresh_state remembers
-- which window end T it shows, so an older window cannot move it back in time.
-- active_call_edge holds the same edges as the AGE graph in every mode: plain SQL
-- users join it, and it is the whole feature on servers without AGE.
CREATE TABLE IF NOT EXISTS age_refresh_state (
  tenant_id    bigint PRIMARY KEY REFERENCES dim_tenant (id),
  applied_at   timestamptz NOT NULL,
  graph_mode   text NOT NULL CHECK (graph_mode IN ('age', 'relational')),
  edges        bigint NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS active_call_edge (
  tenant_id bigint NOT NULL REFERENCES dim_tenant (id),
  src_id    bigint NOT NULL REFERENCES dim_resource (id),
  dst_id    bigint NOT NULL REFERENCES dim_resource (id),
  src_urn   text NOT NULL,
  dst_urn   text NOT NULL,
  calls     bigint NOT NULL,
  errors    bigint NOT NULL,
  rps       double precision NOT NULL,
  err_rate  double precision NOT NULL,
  p95       double precision,
  last_seen timestamptz NOT NULL,
  as_of     timestamptz NOT NULL,
  CONSTRAINT active_call_edge_pkey PRIMARY KEY (tenant_id, src_id, dst_id)
);
CREATE INDEX IF NOT EXISTS active_call_edge_dst_idx ON active_call_edge (tenant_id, dst_id);

-- ---------------------------------------------------------------------------
-- Row-level security by tenant (off until an operator runs obs_enable_rls()).
-- A scoped session runs: SET obs.tenant_id = '<dim_tenant.id>'. Without it a
-- policed role sees no rows. Table owners bypass RLS unless forced; superusers always do.
-- This is a convenience for application roles you trust to set obs.tenant_id, not a
-- boundary: any role can set the setting, and TimescaleDB gives a role that may read a
-- hypertable the same grant on its chunks, which have no policies. The boundary is a
-- tenant-bound reader (obs_create_tenant_reader, end of this file): a role bound to a
-- tenant in obs_tenant_reader; for such a role the binding wins over obs.tenant_id here too.
-- ---------------------------------------------------------------------------
-- Which tenant each tenant-bound reader role may see. Readable by its owner only: a role
-- learns its own binding through obs_reader.bound_tenant. Keyed by the role's oid, so a
-- role dropped and created again under the same name is not bound.
CREATE TABLE IF NOT EXISTS obs_tenant_reader (
  role_oid   oid PRIMARY KEY,
  role_name  name NOT NULL,
  tenant_id  bigint NOT NULL REFERENCES dim_tenant (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON obs_tenant_reader FROM PUBLIC;

-- obs_reader holds the tenant readers' views (end of this file). Its views run with their
-- owner's rights, while current_user inside them is the querying role.
CREATE SCHEMA IF NOT EXISTS obs_reader;
CREATE OR REPLACE VIEW obs_reader.bound_tenant WITH (security_barrier) AS
  SELECT b.tenant_id FROM obs_tenant_reader b
  WHERE b.role_oid = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
GRANT USAGE ON SCHEMA obs_reader TO PUBLIC;  -- every policed role evaluates obs_current_tenant()
GRANT SELECT ON obs_reader.bound_tenant TO PUBLIC;

CREATE OR REPLACE FUNCTION obs_tenant_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT ARRAY['dim_tenant', 'dim_resource', 'oo_locator', 'metric_1m', 'service_call_5m', 'log_pattern',
               'log_pattern_alias', 'log_miner_state', 'log_pattern_5m', 'topo_edge_time', 'kb_doc',
               'kb_chunk', 'event_envelope', 'evidence_link', 'etl_job_run', 'etl_circuit_breaker',
               'age_refresh_state', 'active_call_edge']
$fn$;

-- The tenant of this session: the role's binding if it is a tenant reader (whatever it
-- sets), else the obs.tenant_id setting.
CREATE OR REPLACE FUNCTION obs_current_tenant() RETURNS bigint
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce((SELECT tenant_id FROM obs_reader.bound_tenant),
                  nullif(current_setting('obs.tenant_id', true), '')::bigint)
$fn$;

-- "(SELECT obs_current_tenant())" is evaluated once per statement, not once per row.
-- Databases bootstrapped before it had "= obs_current_tenant()": the policy is altered.
DO $obs$
DECLARE
  t text;
  col text;
  qual text;
BEGIN
  FOREACH t IN ARRAY obs_tenant_tables() LOOP
    col := CASE WHEN t = 'dim_tenant' THEN 'id' ELSE 'tenant_id' END;
    SELECT pg_get_expr(polqual, polrelid) INTO qual FROM pg_policy
     WHERE polrelid = t::regclass AND polname = 'obs_tenant_isolation';
    IF qual IS NULL THEN
      EXECUTE format('CREATE POLICY obs_tenant_isolation ON %I USING (%I = (SELECT obs_current_tenant())) '
                     'WITH CHECK (%I = (SELECT obs_current_tenant()))', t, col, col);
    ELSIF qual NOT LIKE '%SELECT obs_current_tenant()%' THEN
      EXECUTE format('ALTER POLICY obs_tenant_isolation ON %I USING (%I = (SELECT obs_current_tenant())) '
                     'WITH CHECK (%I = (SELECT obs_current_tenant()))', t, col, col);
    END IF;
  END LOOP;
END
$obs$;

-- Also warns about every role that may read a hypertable: it reads the chunks without policies.
CREATE OR REPLACE FUNCTION obs_enable_rls(force_for_owner boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  t text;
  leak record;
BEGIN
  FOREACH t IN ARRAY obs_tenant_tables() LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    IF force_for_owner THEN
      EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END IF;
  END LOOP;
  FOR leak IN SELECT DISTINCT coalesce(a.rolname::text, 'PUBLIC') AS grantee, c.relname
                FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) x
                LEFT JOIN pg_roles a ON a.oid = x.grantee
               WHERE c.oid = ANY (SELECT to_regclass(n) FROM unnest(obs_tenant_tables()) n)
                 AND x.privilege_type = 'SELECT' AND x.grantee <> c.relowner
                 AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid)
               ORDER BY 1, 2 LOOP
    RAISE WARNING 'obs_enable_rls: % may SELECT %, so it may also read its TimescaleDB chunks, where no policy '
                  'applies: row-level security is no tenant boundary for it; use obs_create_tenant_reader()',
                  leak.grantee, leak.relname;
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION obs_disable_rls() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY obs_tenant_tables() LOOP
    EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
  END LOOP;
END
$fn$;

-- ---------------------------------------------------------------------------
-- AGE graph obs_graph: (:Resource)-[:CALLS]->(:Resource)
-- ---------------------------------------------------------------------------
DO $obs$
DECLARE
  saved_path text := current_setting('search_path');
  gid oid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'age') THEN
    RAISE NOTICE 'obs-bootstrap: skipped feature age_graph: age is not installed';
    RETURN;
  END IF;
  BEGIN
    BEGIN
      LOAD 'age';
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- non-superusers may not LOAD; shared_preload_libraries has loaded it already
    END;
    PERFORM set_config('search_path', 'ag_catalog, "$user", public', true);
    SELECT graphid INTO gid FROM ag_catalog.ag_graph WHERE name = 'obs_graph';
    IF gid IS NULL THEN
      PERFORM ag_catalog.create_graph('obs_graph');
      SELECT graphid INTO gid FROM ag_catalog.ag_graph WHERE name = 'obs_graph';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ag_catalog.ag_label WHERE graph = gid AND name = 'Resource') THEN
      PERFORM ag_catalog.create_vlabel('obs_graph', 'Resource');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ag_catalog.ag_label WHERE graph = gid AND name = 'CALLS') THEN
      PERFORM ag_catalog.create_elabel('obs_graph', 'CALLS');
    END IF;
    -- Lookups by tenant and urn on the label tables and endpoint indexes for the
    -- set-based refresh (AGE creates none of these itself).
    CREATE INDEX IF NOT EXISTS obs_resource_tenant_urn_idx ON obs_graph."Resource" (
      (properties OPERATOR(ag_catalog.->>) 'tenant_id'::text),
      (properties OPERATOR(ag_catalog.->>) 'urn'::text));
    CREATE INDEX IF NOT EXISTS obs_calls_tenant_idx ON obs_graph."CALLS" (
      (properties OPERATOR(ag_catalog.->>) 'tenant_id'::text));
    CREATE INDEX IF NOT EXISTS obs_calls_start_idx ON obs_graph."CALLS" (start_id);
    CREATE INDEX IF NOT EXISTS obs_calls_end_idx ON obs_graph."CALLS" (end_id);
  EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'obs-bootstrap: skipped feature age_graph: %', SQLERRM;
  END;
  PERFORM set_config('search_path', saved_path, true);
END
$obs$;

-- ---------------------------------------------------------------------------
-- Seed data and the schema version record
-- ---------------------------------------------------------------------------
INSERT INTO dim_tenant (code, name) VALUES ('default', 'Default tenant') ON CONFLICT (code) DO NOTHING;
INSERT INTO obs_schema_version (version, description) VALUES (1, 'initial schema (design §3)')
  ON CONFLICT (version) DO NOTHING;
INSERT INTO obs_schema_version (version, description)
  VALUES (2, 'etl_job_run.source_digest: what each window read, for late-data reconcile')
  ON CONFLICT (version) DO NOTHING;

-- ---------------------------------------------------------------------------
-- Tenant-bound readers (issue 12, D15). Keep this section after every table.
--
-- A tenant reader is a role bound to one tenant in obs_tenant_reader. It gets SELECT on
-- the views of schema obs_reader and nothing else: no grant on the tables, so none on
-- their TimescaleDB chunks (TimescaleDB copies a hypertable's grants to every chunk it
-- creates, and chunks have no row-level security), none on the AGE graph (AGE has no
-- row-level security; obs_reader.active_call_edge holds the same edges). Each view shows
-- the rows of the querying role's tenant (current_user inside a view is the querying
-- role; the view reads the table with its owner's rights); security_barrier keeps the
-- reader's own functions from seeing rows before that filter. No setting is read, so
-- SET obs.tenant_id changes nothing for it.
-- ---------------------------------------------------------------------------
DO $obs$
DECLARE
  t text;
  base text := (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'dim_tenant'::regclass);
BEGIN
  FOREACH t IN ARRAY obs_tenant_tables() LOOP
    EXECUTE format('CREATE OR REPLACE VIEW obs_reader.%2$I WITH (security_barrier) AS '
                   'SELECT * FROM %1$I.%2$I WHERE %3$I = (SELECT tenant_id FROM obs_reader.bound_tenant)',
                   base, t, CASE WHEN t = 'dim_tenant' THEN 'id' ELSE 'tenant_id' END);
  END LOOP;
END
$obs$;

-- ---------------------------------------------------------------------------
-- topology (topo_edges_as_of, declared vs observed)
-- ---------------------------------------------------------------------------
-- Defined twice from one text: over the tables (schema public) and over the tenant
-- readers' views (schema obs_reader), where any other tenant_id argument yields nothing.
DO $obs$
DECLARE
  s text;
BEGIN
  FOREACH s IN ARRAY ARRAY[(SELECT relnamespace::regnamespace::text FROM pg_class
                             WHERE oid = 'dim_tenant'::regclass), 'obs_reader'] LOOP
    -- The edges of one tenant valid at ts (every source), with their URNs.
    EXECUTE format($ddl$
CREATE OR REPLACE FUNCTION %1$I.topo_edges_as_of(tenant_id bigint, ts timestamptz)
RETURNS TABLE (edge_id bigint, src_id bigint, src_urn text, dst_id bigint, dst_urn text,
               edge_type text, source text, valid tstzrange, props jsonb)
LANGUAGE sql STABLE AS $fn$
  SELECT e.id, e.src_id, s.urn, e.dst_id, d.urn, e.edge_type, e.source, e.valid, e.props
  FROM %1$I.topo_edge_time e
  JOIN %1$I.dim_resource s ON s.id = e.src_id
  JOIN %1$I.dim_resource d ON d.id = e.dst_id
  WHERE e.tenant_id = $1 AND e.valid @> $2
$fn$ $ddl$, s);

    -- Declared application dependencies (Ansible DEPENDS_ON between services, not between
    -- roles) against calls seen in traces (service_call_5m) over [from_ts, to_ts):
    --   declared_unseen  - declared during the range, no call seen
    --   seen_undeclared  - calls seen, never declared during the range
    --   declared_seen    - both
    -- Ansible hosts map to services by the variable convention of the README ("Topology").
    EXECUTE format($ddl$
CREATE OR REPLACE FUNCTION %1$I.topo_declared_vs_observed(tenant_id bigint, from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (src_id bigint, src_urn text, dst_id bigint, dst_urn text, status text,
               calls bigint, errors bigint, first_call_bucket timestamptz, last_call_bucket timestamptz)
LANGUAGE sql STABLE AS $fn$
  WITH declared AS (
    SELECT DISTINCT e.src_id, e.dst_id
    FROM %1$I.topo_edge_time e
    JOIN %1$I.dim_resource s ON s.id = e.src_id
    WHERE e.tenant_id = $1 AND e.source = 'ansible' AND e.edge_type = 'DEPENDS_ON'
      AND s.urn NOT LIKE 'urn:ansible:%%'
      AND e.valid && tstzrange($2, $3, '[)')
  ), observed AS (
    SELECT c.src_id, c.dst_id, sum(c.calls)::bigint AS calls, sum(c.errors)::bigint AS errors,
           min(c.bucket) AS first_bucket, max(c.bucket) AS last_bucket
    FROM %1$I.service_call_5m c
    WHERE c.tenant_id = $1 AND c.bucket >= $2 AND c.bucket < $3 AND c.calls > 0
    GROUP BY c.src_id, c.dst_id
  )
  SELECT coalesce(d.src_id, o.src_id), s.urn, coalesce(d.dst_id, o.dst_id), t.urn,
         CASE WHEN o.src_id IS NULL THEN 'declared_unseen'
              WHEN d.src_id IS NULL THEN 'seen_undeclared'
              ELSE 'declared_seen' END,
         coalesce(o.calls, 0), coalesce(o.errors, 0), o.first_bucket, o.last_bucket
  FROM declared d
  FULL JOIN observed o ON o.src_id = d.src_id AND o.dst_id = d.dst_id
  JOIN %1$I.dim_resource s ON s.id = coalesce(d.src_id, o.src_id)
  JOIN %1$I.dim_resource t ON t.id = coalesce(d.dst_id, o.dst_id)
$fn$ $ddl$, s);

    -- The same comparison for every tenant over the last 24 hours.
    EXECUTE format($ddl$
CREATE OR REPLACE VIEW %1$I.topo_declared_vs_observed_24h AS
  SELECT dt.id AS tenant_id, dt.code AS tenant_code, c.*
  FROM %1$I.dim_tenant dt
  CROSS JOIN LATERAL %1$I.topo_declared_vs_observed(dt.id, now() - interval '24 hours', now()) c
$ddl$, s);
  END LOOP;
END
$obs$;

-- Problems that keep ``reader`` from being a tenant boundary: every path by which it could
-- read rows outside the obs_reader views (a grant to it, to PUBLIC or to a role it belongs
-- to, ownership, superuser, BYPASSRLS). Empty for a sound tenant reader.
CREATE OR REPLACE FUNCTION obs_tenant_reader_problems(reader name) RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  rid oid := (SELECT oid FROM pg_roles WHERE rolname = reader);
  base oid := (SELECT relnamespace FROM pg_class WHERE oid = 'dim_tenant'::regclass);
  graphs oid[] := ARRAY[]::oid[];
BEGIN
  IF rid IS NULL THEN
    RETURN NEXT format('role %I does not exist', reader);
    RETURN;
  END IF;
  IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE oid = rid) THEN
    RETURN NEXT format('role %I is a superuser or has BYPASSRLS', reader);
  END IF;
  IF to_regclass('ag_catalog.ag_graph') IS NOT NULL THEN
    EXECUTE 'SELECT coalesce(array_agg(namespace::oid), ARRAY[]::oid[]) FROM ag_catalog.ag_graph' INTO graphs;
  END IF;
  RETURN QUERY
    SELECT format('role %I may read %s (a grant to it, to PUBLIC or to a role it belongs to, or ownership)',
                  reader, c.oid::regclass)
    FROM pg_class c
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND (c.relnamespace = base OR c.relnamespace = ANY (graphs)
           OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                         WHERE p.relnamespace = base)  -- TimescaleDB chunks of the hypertables
           OR (c.relnamespace::regnamespace::text = '_timescaledb_internal' AND c.relname LIKE '%chunk'))
      AND (has_table_privilege(rid, c.oid, 'SELECT') OR has_any_column_privilege(rid, c.oid, 'SELECT'))
    ORDER BY 1;
END
$fn$;

-- Grant every bound reader that still exists SELECT on every obs_reader view (bootstrap
-- recreates views when tables change; this grants them again).
CREATE OR REPLACE FUNCTION obs_grant_tenant_readers() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
  r name;
  n integer := 0;
BEGIN
  FOR r IN SELECT a.rolname FROM obs_tenant_reader b JOIN pg_roles a ON a.oid = b.role_oid ORDER BY 1 LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA obs_reader TO %I', r);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA obs_reader TO %I', r);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$fn$;

-- Make ``reader`` (created NOLOGIN if it does not exist) a reader of tenant ``tenant``
-- (dim_tenant.code) only. Idempotent. Revokes whatever it held on the tables, their
-- chunks and the AGE graph, grants the obs_reader views, sets its search_path in this
-- database to obs_reader first, and fails (changing nothing) if any path to other rows
-- remains (see obs_tenant_reader_problems). Run it as the tables' owner or a superuser.
CREATE OR REPLACE FUNCTION obs_create_tenant_reader(reader name, tenant text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
  tid bigint := (SELECT id FROM dim_tenant WHERE code = tenant);
  rid oid;
  bound bigint;
  base text := (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'dim_tenant'::regclass);
  rel regclass;
  g text;
  problems text[];
BEGIN
  IF tid IS NULL THEN
    RAISE EXCEPTION 'unknown tenant %: dim_tenant has %', quote_literal(tenant),
      (SELECT string_agg(quote_literal(code), ', ' ORDER BY code) FROM dim_tenant);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = reader) THEN
    EXECUTE format('CREATE ROLE %I NOLOGIN', reader);
  END IF;
  rid := (SELECT oid FROM pg_roles WHERE rolname = reader);
  SELECT tenant_id INTO bound FROM obs_tenant_reader WHERE role_oid = rid;
  IF bound IS NOT NULL AND bound <> tid THEN
    RAISE EXCEPTION 'role % is already the reader of tenant id %; run obs_drop_tenant_reader(%) first',
      quote_ident(reader), bound, quote_literal(reader);
  END IF;
  INSERT INTO obs_tenant_reader (role_oid, role_name, tenant_id) VALUES (rid, reader, tid)
    ON CONFLICT (role_oid) DO UPDATE SET role_name = EXCLUDED.role_name;

  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', base, reader);
  EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', base, reader);
  FOR rel IN SELECT i.inhrelid::regclass FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
              WHERE p.relnamespace::regnamespace::text = base LOOP
    EXECUTE format('REVOKE ALL ON %s FROM %I', rel, reader);
  END LOOP;
  IF to_regclass('ag_catalog.ag_graph') IS NOT NULL THEN
    FOR g IN EXECUTE 'SELECT namespace::regnamespace::text FROM ag_catalog.ag_graph' LOOP
      EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', g, reader);
      EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', g, reader);
    END LOOP;
  END IF;
  PERFORM obs_grant_tenant_readers();
  BEGIN
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET search_path = obs_reader, public',
                   reader, current_database());
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'obs_create_tenant_reader: could not set the search_path of %: %; its queries must '
                 'name obs_reader.<table>', reader, SQLERRM;
  END;

  problems := ARRAY(SELECT obs_tenant_reader_problems(reader));
  IF cardinality(problems) > 0 THEN
    RAISE EXCEPTION 'role % cannot be a tenant reader: %', quote_ident(reader), array_to_string(problems, '; ')
      USING HINT = 'revoke those grants or memberships (the function changed nothing)';
  END IF;
  RETURN tid;
END
$fn$;

-- Unbind ``reader``: delete its binding and revoke the obs_reader views. The role stays.
CREATE OR REPLACE FUNCTION obs_drop_tenant_reader(reader name) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
  rid oid := (SELECT oid FROM pg_roles WHERE rolname = reader);
BEGIN
  IF rid IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA obs_reader FROM %I', reader);
  BEGIN
    EXECUTE format('ALTER ROLE %I IN DATABASE %I RESET search_path', reader, current_database());
  EXCEPTION WHEN insufficient_privilege THEN
    NULL;  -- the setting only names obs_reader, whose views it may no longer read
  END;
  DELETE FROM obs_tenant_reader WHERE role_oid = rid;
  RETURN FOUND;
END
$fn$;

REVOKE ALL ON FUNCTION obs_create_tenant_reader(name, text), obs_drop_tenant_reader(name),
  obs_grant_tenant_readers() FROM PUBLIC;
SELECT obs_grant_tenant_readers();
