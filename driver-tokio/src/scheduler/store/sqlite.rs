//! [`SqliteStore`]: a [`JobStore`] in one SQLite file (embedded, the
//! library bundled, so a fresh machine needs nothing installed).
//!
//! Guarantees: those of [`JobStore`]. Every operation runs on tokio's
//! blocking pool, never on a runtime worker; every write is one
//! transaction (WAL journal, `synchronous = FULL`, foreign keys on), so a
//! crash leaves the file as of the last committed operation: a tick whose
//! save did not commit is lost, never half-applied.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use tether_core::tick::RunReason;

use super::{JobStore, RunsNotSaved, StoreError, StoredJob, TickSave, DEFAULT_MAX_RUNS_PER_JOB};
use crate::scheduler::job::{JobDef, JobId};
use crate::scheduler::record::{RunOutcome, RunRecord};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    interval_ns INTEGER NOT NULL,
    enabled     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    config      TEXT NOT NULL,
    ticks       INTEGER NOT NULL DEFAULT 0,
    last_tick_ns INTEGER,
    next_due_ns INTEGER
);
CREATE TABLE IF NOT EXISTS job_labels (
    job   TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (job, key)
);
CREATE TABLE IF NOT EXISTS job_state (
    job   TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (job, key)
);
CREATE TABLE IF NOT EXISTS runs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job          TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    run          INTEGER NOT NULL,
    tick         INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    scheduled_ns INTEGER NOT NULL,
    started_ns   INTEGER NOT NULL,
    finished_ns  INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    message      TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, seq);
";

/// A [`JobStore`] in a SQLite file. Cheap to clone (clones share the
/// connection).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    max_runs: usize,
}

impl SqliteStore {
    /// Open (or create) the store at `path`, keeping at most
    /// [`DEFAULT_MAX_RUNS_PER_JOB`] run records per job.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, DEFAULT_MAX_RUNS_PER_JOB).await
    }

    /// Open (or create) the store at `path`, keeping at most
    /// `max_runs_per_job` run records per job.
    pub async fn open_with(
        path: impl AsRef<Path>,
        max_runs_per_job: usize,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let c = Connection::open(path)?;
            let _mode: String =
                c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            c.pragma_update(None, "synchronous", "FULL")?;
            c.pragma_update(None, "foreign_keys", true)?;
            c.execute_batch(SCHEMA)?;
            Ok(c)
        })
        .await??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            max_runs: max_runs_per_job,
        })
    }

    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut c)
        })
        .await?
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn wall_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(nanos).unwrap_or(0)
}

fn wall(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn ucount(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn reason_str(r: RunReason) -> &'static str {
    match r {
        RunReason::Scheduled => "scheduled",
        RunReason::Manual => "manual",
        RunReason::Retry => "retry",
    }
}

fn reason_of(s: &str) -> Result<RunReason, StoreError> {
    Ok(match s {
        "scheduled" => RunReason::Scheduled,
        "manual" => RunReason::Manual,
        "retry" => RunReason::Retry,
        other => {
            return Err(StoreError::Corrupt {
                what: "run reason",
                value: other.to_owned(),
            })
        }
    })
}

fn outcome_of(label: &str, message: Option<String>) -> Result<RunOutcome, StoreError> {
    Ok(match label {
        "success" => RunOutcome::Success,
        "failure" => RunOutcome::Failed(message.unwrap_or_default()),
        "panic" => RunOutcome::Panicked(message.unwrap_or_default()),
        "timeout" => RunOutcome::TimedOut,
        "stale" => RunOutcome::Superseded,
        other => {
            return Err(StoreError::Corrupt {
                what: "run outcome",
                value: other.to_owned(),
            })
        }
    })
}

fn outcome_message(o: &RunOutcome) -> Option<&str> {
    match o {
        RunOutcome::Failed(m) | RunOutcome::Panicked(m) => Some(m),
        _ => None,
    }
}

fn load(c: &mut Connection) -> Result<Vec<StoredJob>, StoreError> {
    let tx = c.transaction()?;
    let mut labels: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut state: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (table, into) in [("job_labels", &mut labels), ("job_state", &mut state)] {
        let mut st = tx.prepare(&format!("SELECT job, key, value FROM {table}"))?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (job, k, v): (String, String, String) = row?;
            into.entry(job).or_default().push((k, v));
        }
    }
    let mut st = tx.prepare(
        "SELECT id, name, interval_ns, enabled, kind, config, ticks, last_tick_ns, next_due_ns
         FROM jobs ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, Option<i64>>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, interval, enabled, kind, config, ticks, last, next) = row?;
        out.push(StoredJob {
            def: JobDef {
                labels: labels.remove(&id).unwrap_or_default().into_iter().collect(),
                id: JobId::from(id.clone()),
                name,
                interval: Duration::from_nanos(ucount(interval)),
                enabled,
                kind,
                config,
            },
            state: state.remove(&id).unwrap_or_default().into_iter().collect(),
            ticks: ucount(ticks),
            last_tick: last.map(wall),
            next_due: next.map(wall),
        });
    }
    Ok(out)
}

fn put_job(c: &mut Connection, def: &JobDef) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO jobs (id, name, interval_ns, enabled, kind, config)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name,
             interval_ns = excluded.interval_ns, enabled = excluded.enabled,
             kind = excluded.kind, config = excluded.config",
        params![
            def.id.as_str(),
            def.name,
            nanos(def.interval),
            def.enabled,
            def.kind,
            def.config
        ],
    )?;
    tx.execute("DELETE FROM job_labels WHERE job = ?1", [def.id.as_str()])?;
    for (k, v) in &def.labels {
        tx.execute(
            "INSERT INTO job_labels (job, key, value) VALUES (?1, ?2, ?3)",
            params![def.id.as_str(), k, v],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn record_run(
    c: &mut Connection,
    run: &RunRecord,
    save: Option<&TickSave>,
    max_runs: usize,
) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    let job = run.job.as_str();
    let exists = tx
        .query_row("SELECT 1 FROM jobs WHERE id = ?1", [job], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO runs (job, version, run, tick, reason, scheduled_ns, started_ns,
             finished_ns, outcome, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            job,
            count(run.version),
            count(run.run),
            count(run.tick),
            reason_str(run.reason),
            wall_ns(run.scheduled_for),
            wall_ns(run.started_at),
            wall_ns(run.finished_at),
            run.outcome.label(),
            outcome_message(&run.outcome),
        ],
    )?;
    tx.execute(
        "DELETE FROM runs WHERE job = ?1 AND seq NOT IN
             (SELECT seq FROM runs WHERE job = ?1 ORDER BY seq DESC LIMIT ?2)",
        params![job, count(max_runs as u64)],
    )?;
    if let Some(save) = save {
        tx.execute(
            "UPDATE jobs SET ticks = ?2, last_tick_ns = ?3, next_due_ns = ?4 WHERE id = ?1",
            params![
                job,
                count(save.ticks),
                wall_ns(save.last_tick),
                save.next_due.map(wall_ns)
            ],
        )?;
        if let Some(state) = &save.state {
            tx.execute("DELETE FROM job_state WHERE job = ?1", [job])?;
            for (k, v) in state.iter() {
                tx.execute(
                    "INSERT INTO job_state (job, key, value) VALUES (?1, ?2, ?3)",
                    params![job, k, v],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Count `e` in `failed` (kept as the first error if it is).
fn note_failure(failed: &mut Option<RunsNotSaved>, e: StoreError) {
    match failed {
        Some(f) => f.failed += 1,
        None => {
            *failed = Some(RunsNotSaved {
                first: e,
                failed: 1,
            })
        }
    }
}

fn recent_runs(c: &mut Connection, id: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
    let mut st = c.prepare(
        "SELECT version, run, tick, reason, scheduled_ns, started_ns, finished_ns, outcome, message
         FROM runs WHERE job = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![id, count(limit as u64)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (version, run, tick, reason, sched, started, finished, outcome, message) = row?;
        out.push(RunRecord {
            job: JobId::from(id),
            version: ucount(version),
            run: ucount(run),
            tick: ucount(tick),
            reason: reason_of(&reason)?,
            scheduled_for: wall(sched),
            started_at: wall(started),
            finished_at: wall(finished),
            outcome: outcome_of(&outcome, message)?,
        });
    }
    Ok(out)
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn load(&self) -> Result<Vec<StoredJob>, StoreError> {
        self.call(load).await
    }

    async fn put_job(&self, def: &JobDef) -> Result<(), StoreError> {
        let def = def.clone();
        self.call(move |c| put_job(c, &def)).await
    }

    async fn delete_job(&self, id: &JobId) -> Result<(), StoreError> {
        let id = id.clone();
        self.call(move |c| {
            c.execute("DELETE FROM jobs WHERE id = ?1", [id.as_str()])?;
            Ok(())
        })
        .await
    }

    async fn record_runs(
        &self,
        runs: &[(RunRecord, Option<TickSave>)],
    ) -> Result<(), RunsNotSaved> {
        // One trip to the blocking pool for the batch; each run is still
        // its own transaction.
        let (runs, runs_len, max) = (runs.to_vec(), runs.len(), self.max_runs);
        let failed = self
            .call(move |c| {
                let mut failed = None;
                for (run, save) in &runs {
                    if let Err(e) = record_run(c, run, save.as_ref(), max) {
                        note_failure(&mut failed, e);
                    }
                }
                Ok(failed)
            })
            .await;
        match failed {
            Ok(None) => Ok(()),
            Ok(Some(f)) => Err(f),
            Err(e) => Err(RunsNotSaved {
                first: e,
                failed: runs_len,
            }),
        }
    }

    async fn recent_runs(&self, id: &JobId, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let id = id.clone();
        self.call(move |c| recent_runs(c, id.as_str(), limit)).await
    }
}
