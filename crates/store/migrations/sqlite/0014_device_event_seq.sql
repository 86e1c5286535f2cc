-- Each logged event's place in the log, in the order events were written, whichever
-- server wrote them: the detecting server tails the log by it (servers sharing one
-- consumer each write what they were handed). SQLite writes one transaction at a time,
-- so places are given in commit order. Existing events keep their (at, device, state)
-- order.
CREATE TABLE device_events_placed (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    state     TEXT    NOT NULL,
    reason    TEXT,
    UNIQUE (at, device_id, state)
) STRICT;
INSERT INTO device_events_placed (device_id, at, state, reason)
    SELECT device_id, at, state, reason FROM device_events ORDER BY at, device_id, state;
DROP TABLE device_events;
ALTER TABLE device_events_placed RENAME TO device_events;
