//! The session's transaction as a small state machine: idle, open, or aborted by a failed
//! statement (PostgreSQL) or ended by the database itself (SQLite on some errors); a flush is
//! a savepoint inside an open transaction. Every statement is spelled by the
//! [`Dialect`](crate::sql::Dialect) ([`TxStep`]).

use super::Conn;
use crate::error::{Error, Result};
use crate::sql::TxStep;

/// Where the session's transaction is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum TxState {
    /// No transaction is open.
    #[default]
    Idle,
    /// A transaction is open and may be written to.
    Open,
    /// A transaction is open (or was ended by the database) after this failure, which
    /// undid it: nothing more may be written until it is rolled back.
    Aborted(String),
}

/// What undoes a flush that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlushScope {
    /// A savepoint inside a transaction that earlier statements wrote to.
    Savepoint,
    /// The transaction itself, which nothing wrote to before the flush: rolling it back
    /// costs nothing, where a savepoint makes the database keep a copy of every page the
    /// flush changes.
    Transaction,
}

impl Conn {
    fn step(&mut self, step: TxStep) -> Result<()> {
        let sql = self.dialect().transaction(step);
        let written = self.tx_written;
        let result = self.execute_batch(sql);
        self.tx_written = written;
        result
    }

    /// Starts the writes of a flush: in a savepoint where the open transaction holds
    /// earlier writes, else in the transaction (opened if needed).
    pub(crate) fn begin_flush(&mut self) -> Result<FlushScope> {
        if self.in_transaction() && self.tx_written {
            self.step(TxStep::Savepoint)?;
            Ok(FlushScope::Savepoint)
        } else {
            self.begin()?;
            Ok(FlushScope::Transaction)
        }
    }

    /// Ends the writes of a flush that succeeded.
    pub(crate) fn end_flush(&mut self, scope: FlushScope) -> Result<()> {
        if scope == FlushScope::Savepoint {
            self.release()?;
        }
        self.tx_written = true;
        Ok(())
    }

    /// Undoes the writes of a flush that failed with `cause`: to its savepoint, or the whole
    /// transaction, which held nothing else (the transaction is then over).
    pub(crate) fn undo_flush(&mut self, scope: FlushScope, cause: &Error) {
        match scope {
            FlushScope::Savepoint => self.undo_savepoint(cause),
            FlushScope::Transaction => {
                let _ = self.rollback();
            }
        }
    }

    /// Whether a transaction is open (aborted or not).
    pub(crate) fn in_transaction(&self) -> bool {
        self.tx != TxState::Idle
    }

    /// An error if a failed statement aborted the open transaction.
    pub(crate) fn check_not_aborted(&self) -> Result<()> {
        match &self.tx {
            TxState::Aborted(cause) => Err(Error::TransactionAborted {
                cause: cause.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Notes that a failure aborted the open transaction (the first one is kept).
    pub(super) fn abort(&mut self, cause: &str) {
        if self.tx == TxState::Open {
            self.tx = TxState::Aborted(cause.to_owned());
        }
    }

    /// Opens a transaction unless one is open.
    pub(crate) fn begin(&mut self) -> Result<()> {
        if self.tx == TxState::Idle {
            self.step(TxStep::Begin)?;
            self.tx = TxState::Open;
        }
        Ok(())
    }

    /// Ends the savepoint of a flush that succeeded.
    fn release(&mut self) -> Result<()> {
        self.step(TxStep::Release)
    }

    /// Undoes a flush that failed with `cause`. Where the savepoint undoes it, the
    /// transaction goes on (an abort is lifted); where the savepoint is gone with the
    /// transaction (SQLite ends it on some errors; a connection may be lost), nothing more
    /// is written in it until it is rolled back.
    fn undo_savepoint(&mut self, cause: &Error) {
        if self.step(TxStep::RollbackTo).is_ok() {
            self.tx = TxState::Open;
            let _ = self.step(TxStep::Release);
        } else {
            self.abort(&cause.to_string());
        }
    }

    /// Commits the open transaction. A failed COMMIT leaves it open where the database does
    /// (SQLite, with deferred foreign keys) and ends it where the database does
    /// (PostgreSQL): see [`in_transaction`](Self::in_transaction).
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.check_not_aborted()?;
        match self.step(TxStep::Commit) {
            Ok(()) => {
                self.tx = TxState::Idle;
                self.tx_written = false;
                Ok(())
            }
            Err(e) => {
                if self.dialect().error_aborts_transaction() {
                    self.tx = TxState::Idle;
                    self.tx_written = false;
                }
                Err(e)
            }
        }
    }

    /// Rolls back the open transaction, if any; no ROLLBACK is sent where the database
    /// already ended it. The transaction is over whatever the database answers.
    pub(crate) fn rollback(&mut self) -> Result<()> {
        let open = self.in_transaction() && self.inner.transaction_open() != Some(false);
        self.tx = TxState::Idle;
        self.tx_written = false;
        if open {
            self.step(TxStep::Rollback)
        } else {
            Ok(())
        }
    }
}
