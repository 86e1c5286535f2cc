//! Locks a process holds for as long as it lives: one detecting server among several.
//!
//! A lease that runs out on a timer would leave a restarted server waiting out its dead
//! predecessor's lease. These locks are let go by whoever watches the holder's life: the
//! operating system closes a dead process's files (a SQLite store's lock file), and
//! PostgreSQL ends a dead connection's session and its advisory locks. A server that dies
//! therefore hands over at once, and a stop hands over as it exits.

use std::time::Duration;

/// How long [`Hold::still_held`] waits for PostgreSQL to answer before taking the lock for
/// lost: a holder that cannot tell must stop acting as the holder.
pub const HOLD_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A lock this process holds until it is dropped (or released) or the process dies.
#[derive(Debug)]
pub struct Hold {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// An exclusive lock on a file beside the SQLite database.
    File(std::fs::File),
    /// A session advisory lock, held by this connection, kept out of the pool.
    Postgres(sqlx::PgConnection),
}

impl Hold {
    pub(crate) fn file(file: std::fs::File) -> Hold {
        Hold { inner: Inner::File(file) }
    }

    pub(crate) fn postgres(connection: sqlx::PgConnection) -> Hold {
        Hold { inner: Inner::Postgres(connection) }
    }

    /// Whether the lock is still this process's. A file lock is held until dropped; a
    /// PostgreSQL lock as long as its session lives, so a connection that is gone (or does
    /// not answer within [`HOLD_CHECK_TIMEOUT`]) means another process may hold it now.
    pub async fn still_held(&mut self) -> bool {
        match &mut self.inner {
            Inner::File(_) => true,
            Inner::Postgres(connection) => {
                let ping = sqlx::query("SELECT 1").execute(&mut *connection);
                matches!(tokio::time::timeout(HOLD_CHECK_TIMEOUT, ping).await, Ok(Ok(_)))
            }
        }
    }

    /// Lets go now, rather than when the connection or file is closed.
    pub async fn release(self) {
        match self.inner {
            Inner::File(file) => drop(file),
            Inner::Postgres(connection) => {
                use sqlx::Connection;
                // Closing the session ends its advisory locks.
                let _ = tokio::time::timeout(HOLD_CHECK_TIMEOUT, connection.close()).await;
            }
        }
    }
}
