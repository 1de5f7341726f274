-- vproxy 1.0.0 -> 1.1.0: external workers, the life of a video from SQL,
-- children that spare the database, retention and safer names.  A fresh
-- install of 1.1.0 runs vproxy--1.0.0.sql and then this script, so an
-- upgraded database and a new one have the same objects.
\echo Use "ALTER EXTENSION vproxy UPDATE TO '1.1.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Operations: guarded worker calls, names that become keys, retention
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- The life of a video: URLs, deletion, reprocessing, one writer per video
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Children next to the database: priority, threads and memory
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Workers on other machines: registry, role, monitoring
-- ---------------------------------------------------------------------------
