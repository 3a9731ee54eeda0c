-- Class of service per zone, by name, and call forwarding per station.
--
-- The old `cos` number never selected anything: every call was judged by the default class of
-- the zone it came from. Its replacement, NULL in both class columns, means exactly that, so
-- every station keeps the behaviour it had and the number is dropped.

ALTER TABLE stations ADD COLUMN cos_internal TEXT
    CHECK (cos_internal IS NULL OR length(cos_internal) BETWEEN 1 AND 32);
ALTER TABLE stations ADD COLUMN cos_external TEXT
    CHECK (cos_external IS NULL OR length(cos_external) BETWEEN 1 AND 32);
-- Forwarding targets as dialled (digits, a leading '+' for E.164); NULL = off.
ALTER TABLE stations ADD COLUMN forward_always TEXT
    CHECK (forward_always IS NULL OR length(forward_always) BETWEEN 1 AND 33);
ALTER TABLE stations ADD COLUMN forward_busy TEXT
    CHECK (forward_busy IS NULL OR length(forward_busy) BETWEEN 1 AND 33);
ALTER TABLE stations ADD COLUMN forward_no_answer TEXT
    CHECK (forward_no_answer IS NULL OR length(forward_no_answer) BETWEEN 1 AND 33);
ALTER TABLE stations ADD COLUMN no_answer_secs INTEGER NOT NULL DEFAULT 20
    CHECK (no_answer_secs BETWEEN 1 AND 600);

ALTER TABLE stations DROP COLUMN cos;
