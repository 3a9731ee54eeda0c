-- Certificates of the built-in CA and imported ones (crate pki makes and checks them).
--
-- kind: 'ca' (a root CA made here), 'server' (issued here by one of our CAs), 'imported'
-- (brought in from PKCS#12 or PEM). serial: lower-case hex of the magnitude.
-- The private key is PKCS#8 DER, in the clear: the database file is kept mode 0600 (owner
-- only) by Store::open; NULL for a certificate without its key.
-- chain_der: the certificates above this one, issuer first, DER back to back (DER is
-- self-delimiting), so the TLS listener can send the whole chain.

CREATE TABLE certificates (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    kind        TEXT NOT NULL CHECK (kind IN ('ca', 'server', 'imported')),
    serial      TEXT NOT NULL CHECK (length(serial) BETWEEN 1 AND 42),
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL CHECK (not_after > not_before),
    sha256      TEXT NOT NULL UNIQUE,
    cert_der    BLOB NOT NULL,
    chain_der   BLOB NOT NULL DEFAULT x'',
    key_pkcs8   BLOB,
    issuer_id   INTEGER REFERENCES certificates (id) ON DELETE RESTRICT,
    is_ca       INTEGER NOT NULL CHECK (is_ca IN (0, 1)),
    active      INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    created_at  INTEGER NOT NULL,
    -- The active certificate is the SIP-TLS server's: it needs its key and is not a CA.
    CHECK (active = 0 OR (key_pkcs8 IS NOT NULL AND is_ca = 0)),
    CHECK (kind <> 'ca' OR (is_ca = 1 AND key_pkcs8 IS NOT NULL)),
    CHECK (kind <> 'server' OR issuer_id IS NOT NULL)
) STRICT;

-- At most one active certificate.
CREATE UNIQUE INDEX certificates_one_active ON certificates (active) WHERE active = 1;

-- Every serial this installation ever put in a certificate it made. Rows are never deleted,
-- so removing a certificate does not free its serial (RFC 5280 §4.1.2.2: unique per CA; we
-- keep them unique across all our CAs).
CREATE TABLE issued_serials (
    serial     TEXT NOT NULL PRIMARY KEY,
    first_name TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TRIGGER certificates_issued AFTER INSERT ON certificates
WHEN NEW.kind IN ('ca', 'server')
BEGIN INSERT INTO issued_serials (serial, first_name) VALUES (NEW.serial, NEW.name); END;

CREATE TRIGGER issued_serials_keep BEFORE DELETE ON issued_serials
BEGIN SELECT RAISE(ABORT, 'issued serials are never removed'); END;

-- A change of the active certificate bumps the change counter, so a running server notices
-- `homeline cert use` with the poll it already does.
CREATE TRIGGER certificates_active_ins AFTER INSERT ON certificates WHEN NEW.active = 1
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_active_upd AFTER UPDATE OF active ON certificates
WHEN OLD.active IS NOT NEW.active
BEGIN UPDATE stations_generation SET value = value + 1 WHERE id = 1; END;
