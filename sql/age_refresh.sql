-- Active service-call graph refresh (issue 5), run by airflow_obs_provider.engine.age_graph.
--
-- The file holds named statements: a line "-- name: <section>" starts a section
-- that runs up to the next such line. Parameters are psycopg2 named
-- placeholders; user data (urns, tenant ids) only ever travels as parameters.
-- Every section runs inside the ledger's single window transaction, so a
-- failure anywhere leaves the graph, the relational table and the applied
-- state exactly as they were.
--
-- Why set-based SQL on AGE's label tables instead of Cypher MERGE: AGE 1.5.0
-- drops properties when MERGE clauses follow UNWIND (design section 7), and
-- one parameterised MERGE per edge costs one planner round trip per edge. The
-- label tables obs_graph."Resource"(id, properties) and
-- obs_graph."CALLS"(id, start_id, end_id, properties) are ordinary tables whose
-- id defaults draw from the label sequences, so joins replace 10k MERGEs, and
-- Cypher reads the result like any other graph data.

-- name: schema_present
-- age_refresh_state, active_call_edge and the label-table indexes are created by bootstrap.sql.
SELECT to_regclass('age_refresh_state') IS NOT NULL AND to_regclass('active_call_edge') IS NOT NULL;

-- name: lock_tenant
-- Two different windows of one tenant must not interleave (the ledger only
-- serialises duplicates of the same window).
SELECT pg_advisory_xact_lock(hashtextextended('obs-etl age-refresh tenant ' || %(tenant_id)s::text, 0));

-- name: applied_at
SELECT applied_at FROM age_refresh_state WHERE tenant_id = %(tenant_id)s;

-- name: plan_bulk
-- Every join of the refresh is bulk (thousands of edges against thousands of
-- vertices), but AGE's label tables are rarely analysed and CTE row estimates are
-- guesses, so the planner picks nested loops that turn quadratic (measured: 10k
-- edges took minutes). Hash and merge joins only, for this transaction's refresh;
-- plan_restore puts the caller's setting back before the ledger's own statements.
SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', 'off', true);

-- name: plan_restore
SELECT set_config('enable_nestloop', %(enable_nestloop)s, true);

-- name: relational_sync
-- The truth: one row per (src, dst) with calls in the complete 5-minute buckets
-- inside [window_from, window_to), written to active_call_edge (rows of edges
-- no longer active are removed). Props combine buckets as follows:
--   calls, errors = sums; rps = calls / covered_seconds (the seconds of the
--   complete buckets inside the window: 600 for T on a 5-minute boundary);
--   err_rate = errors / calls; p95 = max of the bucket p95s (conservative: the
--   true 10-minute p95 never exceeds the largest bucket p95); last_seen = end of
--   the latest bucket with calls.
-- No temp tables: a server with AGE in shared_preload_libraries but not
-- installed in this database fails every DROP TABLE (ON COMMIT DROP included).
WITH active AS (
  SELECT c.src_id, c.dst_id, s.urn AS src_urn, d.urn AS dst_urn,
         count(*) AS bucket_rows,
         sum(c.calls)::bigint AS calls,
         sum(c.errors)::bigint AS errors,
         sum(c.calls)::double precision / %(covered_seconds)s AS rps,
         sum(c.errors)::double precision / sum(c.calls) AS err_rate,
         max(c.p95_ms) FILTER (WHERE c.calls > 0) AS p95,
         max(c.bucket) FILTER (WHERE c.calls > 0) + interval '5 minutes' AS last_seen
    FROM service_call_5m c
    JOIN dim_resource s ON s.id = c.src_id AND s.tenant_id = c.tenant_id
    JOIN dim_resource d ON d.id = c.dst_id AND d.tenant_id = c.tenant_id
   WHERE c.tenant_id = %(tenant_id)s
     AND c.bucket >= %(window_from)s
     AND c.bucket + interval '5 minutes' <= %(window_to)s
   GROUP BY c.src_id, c.dst_id, s.urn, d.urn
  HAVING sum(c.calls) > 0
), removed AS (
  DELETE FROM active_call_edge a
   WHERE a.tenant_id = %(tenant_id)s
     AND NOT EXISTS (SELECT 1 FROM active t WHERE t.src_id = a.src_id AND t.dst_id = a.dst_id)
  RETURNING 1
), upserted AS (
  INSERT INTO active_call_edge AS a (tenant_id, src_id, dst_id, src_urn, dst_urn, calls, errors, rps, err_rate,
                                     p95, last_seen, as_of)
  SELECT %(tenant_id)s, t.src_id, t.dst_id, t.src_urn, t.dst_urn, t.calls, t.errors, t.rps, t.err_rate,
         t.p95, t.last_seen, %(window_to)s
    FROM active t
  ON CONFLICT (tenant_id, src_id, dst_id) DO UPDATE
  SET src_urn = EXCLUDED.src_urn, dst_urn = EXCLUDED.dst_urn, calls = EXCLUDED.calls, errors = EXCLUDED.errors,
      rps = EXCLUDED.rps, err_rate = EXCLUDED.err_rate, p95 = EXCLUDED.p95, last_seen = EXCLUDED.last_seen,
      as_of = EXCLUDED.as_of
  RETURNING 1
)
SELECT (SELECT count(*) FROM upserted) AS edges,
       (SELECT coalesce(sum(bucket_rows), 0) FROM active) AS bucket_rows,
       (SELECT count(*) FROM removed) AS removed;

-- name: graph_insert_vertices
-- Merge, never duplicate: only urns without a vertex of this tenant get one
-- (the tenant's advisory lock keeps a concurrent refresh from racing this).
WITH wanted AS (
  SELECT src_urn AS urn FROM active_call_edge WHERE tenant_id = %(tenant_id)s
  UNION
  SELECT dst_urn FROM active_call_edge WHERE tenant_id = %(tenant_id)s
)
INSERT INTO obs_graph."Resource" (properties)
SELECT ag_catalog.agtype_build_map('urn', w.urn, 'tenant_id', %(tenant_id)s::bigint)
  FROM wanted w
 WHERE NOT EXISTS (SELECT 1 FROM obs_graph."Resource" v
                    WHERE (v.properties OPERATOR(ag_catalog.->>) 'tenant_id'::text) = %(tenant_key)s
                      AND (v.properties OPERATOR(ag_catalog.->>) 'urn'::text) = w.urn);

-- name: graph_sync_edges
-- One statement: the tenant's edges the graph must hold (with final agtype
-- props), the existing edge kept for each (updated in place when its props
-- differ), new ones inserted, every other edge of the tenant deleted. The three
-- writes touch disjoint rows and see one snapshot. A duplicate vertex (e.g. a
-- stray Cypher CREATE) never becomes canonical: the oldest id per urn wins, and
-- edges on the others are deleted. Prop types come from agtype_build_map:
-- calls/tenant_id integers, rps/err_rate/p95 floats, last_seen an ISO-8601 UTC
-- string (it sorts like the time it names).
WITH vertex AS (
  SELECT DISTINCT ON (urn) urn, id
    FROM (SELECT properties OPERATOR(ag_catalog.->>) 'urn'::text AS urn, id
            FROM obs_graph."Resource"
           WHERE (properties OPERATOR(ag_catalog.->>) 'tenant_id'::text) = %(tenant_key)s) v
   WHERE urn IS NOT NULL
   ORDER BY urn, id
), desired AS (
  SELECT s.id AS start_id, d.id AS end_id,
         ag_catalog.agtype_build_map(
           'tenant_id', %(tenant_id)s::bigint,
           'calls', t.calls,
           'rps', t.rps,
           'err_rate', t.err_rate,
           'p95', t.p95,
           'last_seen', to_char(t.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) AS properties
    FROM active_call_edge t
    JOIN vertex s ON s.urn = t.src_urn
    JOIN vertex d ON d.urn = t.dst_urn
   WHERE t.tenant_id = %(tenant_id)s
), kept AS (
  SELECT DISTINCT ON (e.start_id, e.end_id) e.id, e.start_id, e.end_id, e.properties
    FROM obs_graph."CALLS" e
    JOIN desired w ON w.start_id = e.start_id AND w.end_id = e.end_id
   WHERE (e.properties OPERATOR(ag_catalog.->>) 'tenant_id'::text) = %(tenant_key)s
   ORDER BY e.start_id, e.end_id, e.id
), deleted AS (
  DELETE FROM obs_graph."CALLS" e
   WHERE (e.properties OPERATOR(ag_catalog.->>) 'tenant_id'::text) = %(tenant_key)s
     AND NOT EXISTS (SELECT 1 FROM kept k WHERE k.id = e.id)
  RETURNING 1
), updated AS (
  UPDATE obs_graph."CALLS" e
     SET properties = w.properties
    FROM kept k
    JOIN desired w ON w.start_id = k.start_id AND w.end_id = k.end_id
   WHERE e.id = k.id
     AND k.properties OPERATOR(ag_catalog.<>) w.properties
  RETURNING 1
), inserted AS (
  INSERT INTO obs_graph."CALLS" (start_id, end_id, properties)
  SELECT w.start_id, w.end_id, w.properties
    FROM desired w
   WHERE NOT EXISTS (SELECT 1 FROM kept k WHERE k.start_id = w.start_id AND k.end_id = w.end_id)
  RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS edges_created,
       (SELECT count(*) FROM updated) AS edges_updated,
       (SELECT count(*) FROM deleted) AS edges_deleted;

-- name: graph_delete_vertices
-- The graph holds the active call graph only: this tenant's vertices left
-- without any edge (of any label) go, so no dangling edge can ever appear.
DELETE FROM obs_graph."Resource" v
 WHERE (v.properties OPERATOR(ag_catalog.->>) 'tenant_id'::text) = %(tenant_key)s
   AND NOT EXISTS (SELECT 1 FROM obs_graph._ag_label_edge x WHERE x.start_id = v.id)
   AND NOT EXISTS (SELECT 1 FROM obs_graph._ag_label_edge x WHERE x.end_id = v.id);

-- name: record_state
INSERT INTO age_refresh_state AS s (tenant_id, applied_at, graph_mode, edges, updated_at)
VALUES (%(tenant_id)s, %(window_to)s, %(graph_mode)s, %(edges)s, now())
ON CONFLICT (tenant_id) DO UPDATE
SET applied_at = EXCLUDED.applied_at, graph_mode = EXCLUDED.graph_mode, edges = EXCLUDED.edges,
    updated_at = now();
