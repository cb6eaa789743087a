-- analytics.sql -- log events in SQLite or PostgreSQL: tables and queries
--
-- Two tables:
--
--   events             the raw events, one row per event, as
--                      `logpipe-drain --sql events` writes them: keyed by
--                      the stream ID, so a batch delivered twice leaves
--                      one row per event.
--   events_per_minute  counts per minute, service and level, as
--                      logpipe-agg writes them from the archive (it
--                      creates the table itself when missing; the
--                      statement here is the same):
--
--   logpipe-replay --sort /var/log/logpipe |
--       logpipe-agg --lateness end --by service,level --sql events_per_minute |
--       sqlite3 stats.db
--
-- The file has two sections, one per database; each is whole (tables,
-- then queries) and runs as it is:
--
--   sed -n '/^-- ==== SQLite/,/^-- ==== PostgreSQL/p' analytics.sql |
--       sqlite3 stats.db
--   sed -n '/^-- ==== PostgreSQL/,$p' analytics.sql | psql -v ON_ERROR_STOP=1
--
-- Each query is introduced by a line "-- query: NAME" (tests/t0820 runs
-- every one of them in both databases).

-- ==== SQLite ==================================================================

-- ts is the event time as RFC 3339 UTC with milliseconds,
-- "2026-11-22T10:00:00.123Z": text that sorts in time order, and whose
-- first 16 characters are the minute, 10 the day.
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,            -- stream entry ID, "1763805600123-0"
    ts TEXT NOT NULL,               -- event time
    service TEXT,
    level TEXT,
    app TEXT,
    message TEXT,
    event TEXT NOT NULL             -- the whole event, JSON
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);

CREATE TABLE IF NOT EXISTS events_per_minute (
    bucket TEXT NOT NULL,           -- minute start, "2026-11-22T10:00:00Z"
    service TEXT NOT NULL DEFAULT '',
    level TEXT NOT NULL DEFAULT '',
    count BIGINT NOT NULL,
    PRIMARY KEY (bucket, service, level)
);

-- query: error rate per service per minute, from the raw events
SELECT substr(ts, 1, 16) || ':00Z' AS minute,
       service,
       SUM(CASE WHEN level = 'error' THEN 1 ELSE 0 END) AS errors,
       COUNT(*) AS total,
       ROUND(1.0 * SUM(CASE WHEN level = 'error' THEN 1 ELSE 0 END)
             / COUNT(*), 4) AS error_rate
FROM events
GROUP BY minute, service
ORDER BY minute, service;

-- query: error rate per service per minute, from the counts
SELECT bucket AS minute,
       service,
       SUM(CASE WHEN level = 'error' THEN count ELSE 0 END) AS errors,
       SUM(count) AS total,
       ROUND(1.0 * SUM(CASE WHEN level = 'error' THEN count ELSE 0 END)
             / SUM(count), 4) AS error_rate
FROM events_per_minute
GROUP BY bucket, service
ORDER BY bucket, service;

-- query: top services by errors in the last hour
SELECT service, COUNT(*) AS errors
FROM events
WHERE level = 'error'
  AND ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour')
GROUP BY service
ORDER BY errors DESC, service
LIMIT 10;

-- query: events per app per day
SELECT substr(ts, 1, 10) AS day, app, COUNT(*) AS events
FROM events
GROUP BY day, app
ORDER BY day, app;

-- ==== PostgreSQL ==============================================================

-- ts is a timestamptz; event a jsonb (so queries may look inside:
-- event->>'user'). Dates are taken in UTC, as logpipe's are.
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,            -- stream entry ID, "1763805600123-0"
    ts TIMESTAMPTZ NOT NULL,        -- event time
    service TEXT,
    level TEXT,
    app TEXT,
    message TEXT,
    event JSONB NOT NULL            -- the whole event
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);

CREATE TABLE IF NOT EXISTS events_per_minute (
    bucket TEXT NOT NULL,           -- minute start, "2026-11-22T10:00:00Z"
    service TEXT NOT NULL DEFAULT '',
    level TEXT NOT NULL DEFAULT '',
    count BIGINT NOT NULL,
    PRIMARY KEY (bucket, service, level)
);

-- query: error rate per service per minute, from the raw events
SELECT to_char(date_trunc('minute', ts AT TIME ZONE 'UTC'),
               'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS minute,
       service,
       COUNT(*) FILTER (WHERE level = 'error') AS errors,
       COUNT(*) AS total,
       ROUND(COUNT(*) FILTER (WHERE level = 'error')::numeric / COUNT(*), 4)
           AS error_rate
FROM events
GROUP BY minute, service
ORDER BY minute, service;

-- query: error rate per service per minute, from the counts
SELECT bucket AS minute,
       service,
       COALESCE(SUM(count) FILTER (WHERE level = 'error'), 0) AS errors,
       SUM(count) AS total,
       ROUND(COALESCE(SUM(count) FILTER (WHERE level = 'error'), 0)::numeric
             / SUM(count), 4) AS error_rate
FROM events_per_minute
GROUP BY bucket, service
ORDER BY bucket, service;

-- query: top services by errors in the last hour
SELECT service, COUNT(*) AS errors
FROM events
WHERE level = 'error'
  AND ts >= now() - interval '1 hour'
GROUP BY service
ORDER BY errors DESC, service
LIMIT 10;

-- query: events per app per day
SELECT (ts AT TIME ZONE 'UTC')::date AS day, app, COUNT(*) AS events
FROM events
GROUP BY day, app
ORDER BY day, app;
