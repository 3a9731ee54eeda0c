-- System settings as key/value text (upstream bandwidth and the like). A change bumps the same
-- counter as a station change, so the server's one cheap poll notices both.

CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 64),
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TRIGGER settings_ins AFTER INSERT ON settings
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
-- Writing a value equal to the stored one is not a change: no reload for a no-op.
CREATE TRIGGER settings_upd AFTER UPDATE ON settings WHEN OLD.value IS NOT NEW.value
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER settings_del AFTER DELETE ON settings
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
