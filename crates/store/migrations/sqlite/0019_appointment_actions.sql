-- Who did each thing to a visit (arrived, completed, cancelled), by the version it made:
-- written in the same transaction as the change, never changed.
CREATE TABLE appointment_actions (
    reference TEXT    NOT NULL REFERENCES appointments (reference),
    version   INTEGER NOT NULL,
    action    TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (reference, version)
) STRICT;
