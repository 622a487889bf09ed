-- leakmon's PostgreSQL schema (docs/fleet.md explains each table and how Grafana reads it).
-- Applied by `leakmon serve --init-db` as the owner of the database; idempotent.
-- Times: t is when the gateway received the frame (UTC); t_device_s is the node's own clock.
CREATE SCHEMA IF NOT EXISTS leakmon;

CREATE TABLE IF NOT EXISTS leakmon.nodes (
    node_id text PRIMARY KEY,
    gateway text NOT NULL,
    info jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every frame a node sent, byte for byte (the raw wire frame, CRC included).
CREATE TABLE IF NOT EXISTS leakmon.frames (
    node_id text NOT NULL,
    boot bigint NOT NULL,
    seq bigint NOT NULL,
    t timestamptz NOT NULL,
    msg_type smallint NOT NULL,
    wire_seq integer NOT NULL,
    historical boolean NOT NULL,
    frame bytea NOT NULL,
    PRIMARY KEY (node_id, boot, seq, t)
) PARTITION BY RANGE (t);

-- The gateway's live leak estimate, at most one per channel per device second.
CREATE TABLE IF NOT EXISTS leakmon.estimates (
    node_id text NOT NULL,
    boot bigint NOT NULL,
    seq bigint NOT NULL,
    channel smallint NOT NULL,
    t timestamptz NOT NULL,
    t_device_s double precision NOT NULL,
    pressure_pa double precision NOT NULL,
    temperature_k double precision NOT NULL,
    leak_rate_pa_per_s double precision NOT NULL,
    leak_rate_ci95_low_pa_per_s double precision NOT NULL,
    leak_rate_ci95_high_pa_per_s double precision NOT NULL,
    leak_rate_stderr_pa_per_s double precision NOT NULL,
    n_samples integer NOT NULL,
    n_eff double precision NOT NULL,
    historical boolean NOT NULL,
    PRIMARY KEY (node_id, boot, seq, channel, t)
) PARTITION BY RANGE (t);

CREATE TABLE IF NOT EXISTS leakmon.alarms (
    node_id text NOT NULL,
    boot bigint NOT NULL,
    seq bigint NOT NULL,
    channel smallint NOT NULL,
    t timestamptz NOT NULL,
    alarm_t_s double precision NOT NULL,
    onset_t_s double precision,
    leak_rate_pa_per_s double precision NOT NULL,
    false_alarm_spacing_s double precision,
    PRIMARY KEY (node_id, boot, seq, channel)
);

CREATE TABLE IF NOT EXISTS leakmon.notes (
    node_id text NOT NULL,
    boot bigint NOT NULL,
    seq bigint NOT NULL,
    t timestamptz NOT NULL,
    kind text NOT NULL CHECK (kind IN ('hatch', 'note')),
    text text NOT NULL,
    detail jsonb NOT NULL,
    PRIMARY KEY (node_id, boot, seq)
);

-- BRIN: tiny, and right for append-only time columns.
CREATE INDEX IF NOT EXISTS frames_t_brin ON leakmon.frames USING brin (t);
CREATE INDEX IF NOT EXISTS estimates_t_brin ON leakmon.estimates USING brin (t);
CREATE INDEX IF NOT EXISTS alarms_t ON leakmon.alarms (t);
CREATE INDEX IF NOT EXISTS notes_t ON leakmon.notes (t);

-- One partition per UTC day of frames and estimates. SECURITY DEFINER: the writer role
-- may call it without the right to create tables itself.
CREATE OR REPLACE FUNCTION leakmon.ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d date;
    tbl text;
    made integer := 0;
BEGIN
    IF last_day - first_day > 400 THEN
        RAISE EXCEPTION 'ensure_partitions: % days asked, at most 400', last_day - first_day;
    END IF;
    PERFORM pg_advisory_xact_lock(7431001);  -- two writers creating the same day
    FOREACH tbl IN ARRAY ARRAY['frames', 'estimates'] LOOP
        d := first_day;
        WHILE d <= last_day LOOP
            IF to_regclass(format('leakmon.%I', tbl || '_' || to_char(d, 'YYYYMMDD'))) IS NULL THEN
                EXECUTE format('CREATE TABLE leakmon.%I PARTITION OF leakmon.%I FOR VALUES FROM (%L) TO (%L)',
                               tbl || '_' || to_char(d, 'YYYYMMDD'), tbl,
                               to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00', to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
                made := made + 1;
            END IF;
            d := d + 1;
        END LOOP;
    END LOOP;
    RETURN made;
END $$;

-- Retention: whole days go at once (DROP of a partition, no DELETE, no vacuum debt).
CREATE OR REPLACE FUNCTION leakmon.drop_partitions_before(cutoff date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7431001);
    FOR r IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = 'leakmon' AND p.relname IN ('frames', 'estimates')
          AND c.relname ~ '_[0-9]{8}$' AND to_date(right(c.relname, 8), 'YYYYMMDD') < cutoff
    LOOP
        EXECUTE format('DROP TABLE leakmon.%I', r.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

REVOKE ALL ON FUNCTION leakmon.ensure_partitions(date, date) FROM PUBLIC;
REVOKE ALL ON FUNCTION leakmon.drop_partitions_before(date) FROM PUBLIC;
