-- Stations, their digest credentials (HA1 only, never the password), the change counter the
-- server polls, and the registrar's bindings.

CREATE TABLE stations (
    number           TEXT    NOT NULL PRIMARY KEY,
    display_name     TEXT    NOT NULL,
    device_type      TEXT    NOT NULL CHECK (device_type IN ('sip-phone', 'softphone', 'browser')),
    auth_enabled     INTEGER NOT NULL CHECK (auth_enabled IN (0, 1)),
    sbc_allowed      INTEGER NOT NULL CHECK (sbc_allowed IN (0, 1)),
    cos              INTEGER NOT NULL CHECK (cos >= 0),
    payload_security INTEGER NOT NULL CHECK (payload_security IN (0, 1)),
    password_strong  INTEGER NOT NULL CHECK (password_strong IN (0, 1)),
    -- The store API checks this with the policy crate and names the broken rules; this is the
    -- backstop for anything writing to the file directly.
    CHECK (sbc_allowed = 0 OR (auth_enabled = 1 AND password_strong = 1))
) STRICT;

CREATE TABLE station_credentials (
    number    TEXT NOT NULL REFERENCES stations (number) ON DELETE CASCADE,
    realm     TEXT NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('MD5', 'SHA-256')),
    ha1       TEXT NOT NULL,
    PRIMARY KEY (number, realm, algorithm)
) STRICT, WITHOUT ROWID;

CREATE TABLE stations_generation (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
) STRICT;
INSERT INTO stations_generation (id, value) VALUES (1, 0);

CREATE TRIGGER stations_ins AFTER INSERT ON stations
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER stations_upd AFTER UPDATE ON stations
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER stations_del AFTER DELETE ON stations
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER station_credentials_ins AFTER INSERT ON station_credentials
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER station_credentials_upd AFTER UPDATE ON station_credentials
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER station_credentials_del AFTER DELETE ON station_credentials
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;

-- No foreign key to stations: the binding writer must never fail a whole batch because a
-- station was removed meanwhile; remove_station deletes the station's bindings itself.
CREATE TABLE bindings (
    aor              TEXT    NOT NULL,
    contact          TEXT    NOT NULL,
    instance         TEXT,
    reg_id           INTEGER,
    call_id          TEXT    NOT NULL,
    cseq             INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    zone             TEXT    NOT NULL CHECK (zone IN ('internal', 'external')),
    transport        TEXT    NOT NULL,
    source           TEXT    NOT NULL,
    local            TEXT    NOT NULL,
    flow             INTEGER,
    q                REAL,
    user_agent       TEXT,
    contact_mismatch INTEGER NOT NULL CHECK (contact_mismatch IN (0, 1)),
    PRIMARY KEY (aor, contact)
) STRICT, WITHOUT ROWID;

CREATE INDEX bindings_expires_at ON bindings (expires_at);
