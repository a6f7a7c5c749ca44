//! The transfer queue that survives a restart: the TUI's unfinished jobs (running, failed)
//! written to one small file in the state directory on every change that matters, and read
//! back on the next start so they can be resumed from their partials.
//!
//! A job is kept by what it takes to run it again: the server's address (never a token or a
//! password: a resumed job runs on the session's own login), the items, the policy and the
//! move flag. The file is replaced atomically (`ferry_localfs::replace`), bounded in size, and
//! a file that cannot be read as this version's (corrupt, or written by a newer ferry) is set
//! aside under a new name with a message, never a panic, so the user's next jobs still save.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{ConflictPolicy, Endpoint, JobSpec, JobSummary};

use super::jobs::{JobInfo, JobKey};
use super::location::{Location, Side};

/// The version this ferry writes and reads.
pub const VERSION: u32 = 1;
/// Jobs kept at most; older ones beyond it are dropped (with a message) rather than letting
/// the file grow without end.
pub const MAX_JOBS: usize = 100;
/// Items kept per job at most: a selection of more is not saved (its partials remain).
pub const MAX_ITEMS: usize = 10_000;
/// The largest file read back; a bigger one is set aside as corrupt. Writing keeps under it
/// by leaving the oldest jobs out.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The paths of one job's items at most, in bytes: a bigger job is not saved.
pub const MAX_JOB_PATH_BYTES: usize = 1024 * 1024;

/// The queue file in `state_dir`.
pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join("jobs.json")
}

/// The direction of a kept job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Upload,
    Download,
}

/// Where a kept job stood when ferry last wrote the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Waiting for its turn in the transfer list.
    Queued,
    /// Submitted or running: unfinished.
    Running,
    /// Paused by the user.
    Paused,
    /// Ended with an error: what it said.
    Failed(String),
}

/// One job as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedJob {
    /// The server's `host:port`, as [`Endpoint::address`] gives it.
    pub server: String,
    /// `ferrys://` (TLS).
    pub tls: bool,
    /// The account the session logged in as, if any (its password is never kept).
    pub user: Option<String>,
    pub direction: Direction,
    /// `(local path, remote path)` of each item, local paths as UTF-8.
    pub items: Vec<(String, String)>,
    pub policy: ConflictPolicy,
    pub is_move: bool,
    pub stage: Stage,
    /// What the transfer list calls it.
    pub label: String,
}

impl SavedJob {
    /// The job `spec` submitted to the server of `endpoint`, labelled `label`; `None` when it
    /// cannot be kept faithfully (a local path that is not UTF-8, too many items).
    pub fn new(endpoint: &Endpoint, spec: &JobSpec, label: &str) -> Option<SavedJob> {
        let (direction, items, policy, is_move) = match spec {
            JobSpec::Upload {
                items,
                policy,
                remove_source,
            } => (
                Direction::Upload,
                items
                    .iter()
                    .map(|(l, r)| Some((l.to_str()?.to_owned(), r.clone())))
                    .collect::<Option<Vec<_>>>()?,
                *policy,
                *remove_source,
            ),
            JobSpec::Download {
                items,
                policy,
                remove_source,
            } => (
                Direction::Download,
                items
                    .iter()
                    .map(|(r, l)| Some((l.to_str()?.to_owned(), r.clone())))
                    .collect::<Option<Vec<_>>>()?,
                *policy,
                *remove_source,
            ),
            // Between two servers or inside one: nothing local to resume from, and a second
            // server's login is not kept; such a job is not saved (README says so).
            JobSpec::Relay { .. } => return None,
        };
        let path_bytes: usize = items.iter().map(|(l, r)| l.len() + r.len()).sum();
        if items.len() > MAX_ITEMS || path_bytes > MAX_JOB_PATH_BYTES {
            return None;
        }
        Some(SavedJob {
            server: endpoint.address(),
            tls: endpoint.tls,
            user: endpoint.user.clone(),
            direction,
            items,
            policy,
            is_move,
            stage: Stage::Running,
            label: label.to_owned(),
        })
    }

    /// The spec that runs the job again. Its partials make it a resume: a download's
    /// `.ferry-part` files and an upload's partials on the server are continued under every
    /// policy.
    pub fn spec(&self) -> JobSpec {
        let policy = self.policy;
        match self.direction {
            Direction::Upload => JobSpec::Upload {
                items: self
                    .items
                    .iter()
                    .map(|(l, r)| (PathBuf::from(l), r.clone()))
                    .collect(),
                policy,
                remove_source: self.is_move,
            },
            Direction::Download => JobSpec::Download {
                items: self
                    .items
                    .iter()
                    .map(|(l, r)| (r.clone(), PathBuf::from(l)))
                    .collect(),
                policy,
                remove_source: self.is_move,
            },
        }
    }

    /// Whether the job belongs to the server of `endpoint`.
    pub fn is_for(&self, endpoint: &Endpoint) -> bool {
        self.server == endpoint.address() && self.tls == endpoint.tls
    }
}

/// The jobs the file holds while ferry runs: this session's, by the key the transfer list
/// knows them by, and the ones read at start (waiting for the user's answer, or for another
/// server), written back as they are. No IO: the app asks the event loop to write a
/// [`Queue::snapshot`].
#[derive(Debug, Default)]
pub struct Queue {
    /// The file; `None` saves nothing (tests, the bundled server's random port).
    pub path: Option<PathBuf>,
    live: Vec<(JobKey, SavedJob)>,
    /// Read at start for this server, not yet resumed or discarded.
    pub waiting: Vec<SavedJob>,
    /// Read at start for other servers: kept for a start that connects there.
    others: Vec<SavedJob>,
    /// The server new jobs go to, without its secrets (only its address, TLS and user are
    /// ever written).
    server: Option<Endpoint>,
}

impl Queue {
    /// The queue at `path` with what `load` read, sorted into this server's (`endpoint`)
    /// and the others.
    pub fn restore(path: Option<PathBuf>, jobs: Vec<SavedJob>, endpoint: &Endpoint) -> Queue {
        let (waiting, others) = jobs.into_iter().partition(|job| job.is_for(endpoint));
        let mut queue = Queue {
            path,
            live: Vec::new(),
            waiting,
            others,
            server: None,
        };
        queue.set_server(endpoint);
        queue
    }

    /// New jobs go to the server of `endpoint` (a connection switched servers).
    pub fn set_server(&mut self, endpoint: &Endpoint) {
        self.server = Some(Endpoint {
            host: endpoint.host.clone(),
            port: endpoint.port,
            tls: endpoint.tls,
            user: endpoint.user.clone(),
            ..Endpoint::default()
        });
    }

    /// A job entered the transfer list under `key` (not yet started): kept as queued when
    /// it can be (a server is known, its paths are UTF-8); whether it was.
    pub fn enqueued(&mut self, key: JobKey, spec: &JobSpec, label: &str) -> bool {
        if self.path.is_none() {
            return false;
        }
        let Some(mut job) = self
            .server
            .as_ref()
            .and_then(|server| SavedJob::new(server, spec, label))
        else {
            return false;
        };
        job.stage = Stage::Queued;
        self.live.push((key, job));
        true
    }

    /// A job read at start now in the transfer list under `key`, kept as it was.
    pub fn adopt(&mut self, key: JobKey, job: SavedJob) {
        self.live.push((key, job));
    }

    /// A queued job (`waiting`) started as the engine's `key`; whether it was kept.
    pub fn started(&mut self, waiting: JobKey, key: JobKey) -> bool {
        match self.live.iter_mut().find(|(k, _)| *k == waiting) {
            Some((k, job)) => {
                *k = key;
                job.stage = Stage::Running;
                true
            }
            None => false,
        }
    }

    /// A job ended: done or cancelled by the user, it leaves the file; failed, it stays as
    /// failed. Whether anything changed.
    pub fn finished(&mut self, key: JobKey, outcome: &Result<JobSummary, String>) -> bool {
        let Some(i) = self.live.iter().position(|(k, _)| *k == key) else {
            return false;
        };
        match outcome {
            Ok(summary) if summary.failed == 0 => {
                self.live.remove(i);
            }
            Err(error) if error == "cancelled" => {
                self.live.remove(i);
            }
            Ok(summary) => {
                self.live[i].1.stage = Stage::Failed(format!("{} files failed", summary.failed));
            }
            Err(error) => self.live[i].1.stage = Stage::Failed(error.clone()),
        }
        true
    }

    /// A job was paused: the engine's `old` key ends as cancelled, the file keeps it as
    /// paused under `waiting` (its key until it runs again).
    pub fn paused(&mut self, old: JobKey, waiting: JobKey) {
        if let Some((key, job)) = self.live.iter_mut().find(|(k, _)| *k == old) {
            *key = waiting;
            job.stage = Stage::Paused;
        }
    }

    /// Drops job `key` from the file (it runs again under a new key, or will not run);
    /// whether it was there.
    pub fn forget(&mut self, key: JobKey) -> bool {
        let before = self.live.len();
        self.live.retain(|(k, _)| *k != key);
        self.live.len() != before
    }

    /// What to write, and where; `None` when nothing is saved.
    pub fn snapshot(&self) -> Option<(PathBuf, Vec<SavedJob>)> {
        let path = self.path.clone()?;
        let jobs = self
            .others
            .iter()
            .chain(&self.waiting)
            .chain(self.live.iter().map(|(_, job)| job))
            .cloned()
            .collect();
        Some((path, jobs))
    }
}

/// What the transfer list shows for a job read back from the file.
pub fn info(job: &SavedJob) -> JobInfo {
    let pairs: Vec<(Location, Location)> = job
        .items
        .iter()
        .map(|(l, r)| {
            (
                Location::Local(PathBuf::from(l)),
                Location::Remote(r.clone()),
            )
        })
        .collect();
    let dir = |location: Option<&Location>| location.and_then(Location::parent).map(|(dir, _)| dir);
    let first = pairs.first();
    let local_dir = dir(first.map(|(l, _)| l)).unwrap_or(Location::Local(PathBuf::from("/")));
    let remote_dir = dir(first.map(|(_, r)| r)).unwrap_or(Location::Remote(String::new()));
    let (dest, src_dir, dest_dir, items) = match job.direction {
        Direction::Upload => (
            Side::Remote,
            local_dir,
            remote_dir,
            pairs.iter().map(|(l, r)| (l.key(), r.key())).collect(),
        ),
        Direction::Download => (
            Side::Local,
            remote_dir,
            local_dir,
            pairs.iter().map(|(l, r)| (r.key(), l.key())).collect(),
        ),
    };
    JobInfo {
        dest,
        src_dir,
        dest_dir,
        items,
        is_move: job.is_move,
        label: job.label.clone(),
    }
}

/// The file as written.
#[derive(Debug, Serialize, Deserialize)]
struct QueueFile {
    version: u32,
    jobs: Vec<SavedJob>,
}

/// Only the version, read first so a newer file is told apart from a corrupt one.
#[derive(Debug, Deserialize)]
struct Version {
    version: u32,
}

/// What reading the file gave: the jobs, and a message for the user when something was
/// wrong with it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub jobs: Vec<SavedJob>,
    pub note: Option<String>,
}

/// Reads the queue file at `path`. A missing file is an empty queue; an unreadable one is
/// renamed aside (`jobs.json.bad-<seconds>`) and reported.
pub fn load(path: &Path) -> Loaded {
    let bytes = match read_bounded(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Loaded::default(),
        Err(why) => return set_aside(path, &why),
    };
    match serde_json::from_slice::<Version>(&bytes) {
        Ok(v) if v.version > VERSION => {
            return set_aside(
                path,
                &format!("written by a newer ferry (version {})", v.version),
            );
        }
        Ok(_) => {}
        Err(error) => return set_aside(path, &format!("not readable: {error}")),
    }
    match serde_json::from_slice::<QueueFile>(&bytes) {
        Ok(file) => Loaded {
            jobs: file.jobs,
            note: None,
        },
        Err(error) => set_aside(path, &format!("not readable: {error}")),
    }
}

/// The file's bytes, `None` when there is none; an error when it is too big or unreadable.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot open it: {error}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(Some(bytes))
}

/// Moves the file at `path` out of the way and says so.
fn set_aside(path: &Path, why: &str) -> Loaded {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".bad-{secs}"));
    let aside = PathBuf::from(aside);
    let shown = crate::format::local_path(path);
    let note = match std::fs::rename(path, &aside) {
        Ok(()) => format!(
            "The saved transfer queue {shown} was {why}; it was set aside as {}",
            crate::format::local_path(&aside)
        ),
        Err(error) => {
            format!("The saved transfer queue {shown} was {why}, and cannot be set aside: {error}")
        }
    };
    Loaded {
        jobs: Vec::new(),
        note: Some(crate::format::escape_text(&note).into_owned()),
    }
}

/// Writes `jobs` (the newest [`MAX_JOBS`], and of those the newest that fit in
/// [`MAX_FILE_BYTES`]) to `path` atomically, creating its directory.
pub fn save(path: &Path, jobs: &[SavedJob]) -> std::io::Result<()> {
    let mut keep = jobs[jobs.len().saturating_sub(MAX_JOBS)..].to_vec();
    let bytes = loop {
        let file = QueueFile {
            version: VERSION,
            jobs: keep,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        keep = file.jobs;
        if bytes.len() as u64 <= MAX_FILE_BYTES || keep.is_empty() {
            break bytes;
        }
        // Escaping can make a job's entry several times its path bytes: drop the oldest
        // part in proportion and measure again.
        let over = bytes.len() as u64 - MAX_FILE_BYTES;
        let share = usize::try_from(over.saturating_mul(keep.len() as u64) / bytes.len() as u64)
            .unwrap_or(keep.len());
        keep.drain(..share.clamp(1, keep.len()));
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    ferry_localfs::replace(path, &bytes, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port: 7777,
            token: Some("s3cret-token-value".into()),
            user: Some("alice".into()),
            password: Some("hunter2-password".into()),
            ..Endpoint::default()
        }
    }

    fn download() -> JobSpec {
        JobSpec::Download {
            items: vec![("dir/big.bin".into(), PathBuf::from("/home/a/big.bin"))],
            policy: ConflictPolicy::Ask,
            remove_source: true,
        }
    }

    #[test]
    fn a_job_round_trips_and_no_secret_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let path = path_in(&tmp.path().join("state"));
        let mut up = SavedJob::new(
            &endpoint(),
            &JobSpec::Upload {
                items: vec![(PathBuf::from("/l/a.txt"), "r/a.txt".into())],
                policy: ConflictPolicy::OverwriteIfNewer,
                remove_source: false,
            },
            "a.txt",
        )
        .unwrap();
        up.stage = Stage::Failed("connection: gone".into());
        let down = SavedJob::new(&endpoint(), &download(), "big.bin").unwrap();
        save(&path, &[up.clone(), down.clone()]).unwrap();
        let loaded = load(&path);
        assert_eq!(loaded.note, None);
        assert_eq!(loaded.jobs, vec![up, down.clone()]);
        assert!(matches!(
            loaded.jobs[1].spec(),
            JobSpec::Download { items, policy: ConflictPolicy::Ask, remove_source: true }
                if items == vec![("dir/big.bin".to_string(), PathBuf::from("/home/a/big.bin"))]
        ));
        assert!(loaded.jobs[1].is_for(&endpoint()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret-token-value"), "{text}");
        assert!(!text.contains("hunter2-password"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_corrupt_or_newer_file_is_set_aside_with_a_message() {
        let tmp = tempfile::tempdir().unwrap();
        let path = path_in(tmp.path());
        for bytes in [
            &b"{\"version\": 1, \"jobs\": [tru"[..],
            b"\xff\xfe garbage",
            b"{\"version\": 99, \"jobs\": []}",
        ] {
            std::fs::write(&path, bytes).unwrap();
            let loaded = load(&path);
            assert!(loaded.jobs.is_empty());
            let note = loaded.note.unwrap();
            assert!(note.contains("set aside"), "{note}");
            assert!(!path.exists(), "the bad file must be moved away");
            let aside: Vec<_> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("jobs.json.bad-"))
                .collect();
            assert!(!aside.is_empty());
            for name in aside {
                std::fs::remove_file(tmp.path().join(name)).unwrap();
            }
        }
        // A missing file is an empty queue, without a word.
        assert_eq!(load(&path), Loaded::default());
        // A newer file's message says so.
        std::fs::write(&path, b"{\"version\": 2}").unwrap();
        assert!(load(&path).note.unwrap().contains("newer ferry"));
    }

    #[test]
    fn a_done_or_cancelled_job_leaves_the_queue_a_failed_one_stays_and_other_servers_stay() {
        use crate::engine::JobId;
        let mut other = SavedJob::new(&endpoint(), &download(), "elsewhere").unwrap();
        other.server = "10.0.0.9:7777".into();
        let waiting = SavedJob::new(&endpoint(), &download(), "waiting").unwrap();
        let mut queue = Queue::restore(
            Some(PathBuf::from("/s/jobs.json")),
            vec![other.clone(), waiting.clone()],
            &endpoint(),
        );
        assert_eq!(queue.waiting, vec![waiting.clone()]);
        let key = |id| JobKey {
            conn: 1,
            id: JobId(id),
        };
        let waiting = |id| JobKey {
            conn: 0,
            id: JobId(id),
        };
        for id in 1..=4 {
            assert!(queue.enqueued(waiting(id), &download(), &format!("#{id}")));
        }
        let (_, jobs) = queue.snapshot().unwrap();
        assert_eq!(jobs[2].stage, Stage::Queued);
        // The session's secrets never reach a kept job.
        assert!(jobs.iter().all(|j| j.user.as_deref() == Some("alice")));
        for id in 1..=3 {
            assert!(queue.started(waiting(id), key(id)));
        }
        queue.paused(key(3), waiting(3));
        assert!(queue.started(waiting(3), key(3)));
        let summary = |failed| JobSummary {
            files: 1,
            bytes: 1,
            skipped: 0,
            failed,
            elapsed: std::time::Duration::ZERO,
        };
        assert!(queue.finished(key(1), &Ok(summary(0))));
        assert!(queue.finished(key(2), &Err("cancelled".into())));
        assert!(queue.finished(key(3), &Ok(summary(2))));
        assert!(!queue.finished(key(9), &Ok(summary(0))));
        let (_, jobs) = queue.snapshot().unwrap();
        let labels: Vec<&str> = jobs.iter().map(|j| j.label.as_str()).collect();
        assert_eq!(labels, ["elsewhere", "waiting", "#3", "#4"]);
        assert_eq!(jobs[2].stage, Stage::Failed("2 files failed".into()));
        assert_eq!(jobs[3].stage, Stage::Queued);
        assert!(queue.forget(waiting(4)));
        assert!(!queue.forget(waiting(4)));
        assert!(Queue::default().snapshot().is_none());
    }

    #[test]
    fn a_job_too_big_is_not_kept_and_the_file_stays_under_its_cap() {
        let long = "x".repeat(4000);
        let big = |n: usize| JobSpec::Download {
            items: (0..n)
                .map(|i| (format!("{long}/{i}"), PathBuf::from(format!("/{long}/{i}"))))
                .collect(),
            policy: ConflictPolicy::Ask,
            remove_source: false,
        };
        // 200 items of 8 KB: over the per-job cap.
        assert!(SavedJob::new(&endpoint(), &big(200), "too big").is_none());
        // 100 jobs of 800 KB each: 80 MB, so the oldest go.
        let one = SavedJob::new(&endpoint(), &big(100), "big").unwrap();
        let jobs: Vec<SavedJob> = (0..MAX_JOBS)
            .map(|i| SavedJob {
                label: format!("job {i}"),
                ..one.clone()
            })
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        let path = path_in(tmp.path());
        save(&path, &jobs).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= MAX_FILE_BYTES, "{size}");
        let loaded = load(&path);
        assert_eq!(loaded.note, None);
        assert!(loaded.jobs.len() > 5, "{}", loaded.jobs.len());
        assert_eq!(
            loaded.jobs.last().unwrap().label,
            format!("job {}", MAX_JOBS - 1)
        );
    }

    #[test]
    fn the_file_keeps_the_newest_jobs_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = path_in(tmp.path());
        let jobs: Vec<SavedJob> = (0..MAX_JOBS + 5)
            .map(|i| SavedJob::new(&endpoint(), &download(), &format!("job {i}")).unwrap())
            .collect();
        save(&path, &jobs).unwrap();
        let loaded = load(&path).jobs;
        assert_eq!(loaded.len(), MAX_JOBS);
        assert_eq!(loaded[0].label, "job 5");
    }
}
