//! `ferry get` and `ferry put`: what the target means (as with `cp`, an existing directory
//! receives the source under its own name, anything else is the new name), then one engine job
//! that `watch` runs to its end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ferry_protocol::{ErrorCode, Kind, path};

use super::error::{CliError, usage};
use super::locations::{base_name, one_server};
use super::options::TransferOptions;
use super::watch::{Refused, run_job};
use crate::engine::{Endpoint, EngineError, Groundwork, JobSpec, JobSummary, Session};
use crate::url::RemoteUrl;

/// Downloads `urls` (all on the server of `endpoint`) to `local`.
pub async fn get(
    endpoint: &Endpoint,
    urls: &[RemoteUrl],
    local: &Path,
    options: TransferOptions,
) -> Result<JobSummary, CliError> {
    // `-` is stdout, written as a stream like any FIFO or terminal.
    let stdout;
    let local = if local == Path::new("-") {
        stdout = stdout_path();
        stdout.as_path()
    } else {
        local
    };
    let into_dir = local.is_dir();
    // As with cp, a trailing slash names a directory: never a new file called like it.
    if !into_dir && local.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(
            match std::fs::symlink_metadata(local.components().as_path()) {
                Ok(_) => usage(
                    "not_a_directory",
                    crate::format::local_path(local),
                    "not a directory",
                ),
                Err(_) => usage(
                    "not_found",
                    crate::format::local_path(local),
                    "no such directory",
                ),
            },
        );
    }
    if urls.len() > 1 && !into_dir {
        return Err(usage(
            "not_a_directory",
            crate::format::local_path(local),
            "with several sources the target must be an existing directory",
        ));
    }
    one_server(endpoint, urls, "sources")?;
    // Every source is looked at in `hello`'s round trip; the job goes on with this session and
    // these answers.
    let paths = urls.iter().map(|url| url.path.clone()).collect::<Vec<_>>();
    let (session, stats) = Session::connect_stat(endpoint, &paths).await?;
    let mut known = HashMap::with_capacity(urls.len());
    let mut items = Vec::with_capacity(urls.len());
    let mut refused = Refused {
        json: options.json,
        ..Refused::default()
    };
    let mut single_file = urls.len() == 1;
    for (url, stat) in urls.iter().zip(stats) {
        // As with cp, a source that cannot be copied fails alone and the others go on.
        let entry = match stat {
            Ok(entry) => entry,
            Err(e @ EngineError::Remote { .. }) => {
                refused.report(&e.into());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = check_kind(&url.path, entry.kind, options.recursive) {
            refused.report(&e);
            continue;
        }
        single_file &= entry.kind == Kind::File;
        known.insert(url.path.clone(), Some(entry));
        let dest = match (into_dir, base_name(&url.path)) {
            (true, "") => local.to_owned(),
            (true, name) => local.join(crate::names::os_name(name)),
            (false, _) => local.to_owned(),
        };
        items.push((url.path.clone(), dest));
    }
    if items.is_empty() {
        return refused.nothing_to_copy(options);
    }
    let spec = JobSpec::Download {
        items,
        policy: options.policy,
        remove_source: options.remove_source,
    };
    let groundwork = Groundwork {
        session,
        stats: known,
    };
    run_job(endpoint, spec, options, single_file, refused, groundwork).await
}

/// The name of stdin's spool inside its private directory.
const STDIN_NAME: &str = "stdin";

/// Copies stdin into a new file in a private (0700) temporary directory, removed when the
/// returned handle drops. The file gets `0666` (the server takes its umask off, as a plain
/// create would); the directory keeps it private meanwhile.
fn spool_stdin() -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("ferry-stdin.").tempdir()?;
    let path = dir.path().join(STDIN_NAME);
    let mut file = std::fs::File::create(&path)?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file)?;
    file.sync_all()?;
    file.set_permissions(std::fs::Permissions::from_mode(0o666))?;
    Ok(dir)
}

/// Where `-` writes: the process's own stdout, by the name that reaches it.
fn stdout_path() -> PathBuf {
    let dev = PathBuf::from("/dev/stdout");
    if std::fs::metadata(&dev).is_ok() {
        dev
    } else {
        PathBuf::from("/proc/self/fd/1")
    }
}

/// Whether an entry of `kind` can be a source: a file, or a directory with `-r`.
fn check_kind(shown: &str, kind: Kind, recursive: bool) -> Result<(), CliError> {
    match kind {
        Kind::Dir if !recursive => {
            Err(usage("is_a_directory", shown, "use -r to copy a directory"))
        }
        Kind::Dir | Kind::File => Ok(()),
        Kind::Symlink => Err(usage(
            "forbidden",
            shown,
            "a symlink: only regular files and directories are transferred",
        )),
        Kind::Other => Err(usage(
            "forbidden",
            shown,
            "a special file: only regular files and directories are transferred",
        )),
    }
}

/// The name a local source goes by on the server: its own last component, or for `.` and
/// the like, that of the directory it stands for.
fn local_name(source: &Path) -> Result<String, CliError> {
    let shown = crate::format::local_path(source);
    let named = match source.file_name() {
        Some(name)
            if source
                .components()
                .next_back()
                .is_some_and(|c| matches!(c, std::path::Component::Normal(_))) =>
        {
            PathBuf::from(name)
        }
        _ => std::fs::canonicalize(source)
            .map_err(|e| CliError::Engine(crate::engine::EngineError::local(source, e)))?
            .file_name()
            .map(PathBuf::from)
            .ok_or_else(|| usage("bad_path", &shown, "the root directory has no name to copy"))?,
    };
    let name = crate::names::wire_name(named.as_os_str());
    path::check_name(&name).map_err(|e| usage("bad_path", &shown, e.to_string()))?;
    Ok(name)
}

/// Uploads `sources` to `url`.
pub async fn put(
    endpoint: &Endpoint,
    sources: &[PathBuf],
    url: &RemoteUrl,
    options: TransferOptions,
) -> Result<JobSummary, CliError> {
    // The target, and each source's name inside it (what it means when the target is a
    // directory), are looked at in `hello`'s round trip; the job goes on with this session.
    let children = sources
        .iter()
        .filter(|source| source.as_os_str() != "-")
        .filter_map(|source| local_name(source).ok())
        .map(|name| path::join(&url.path, &name))
        .collect::<Vec<_>>();
    let paths = std::iter::once(url.path.clone())
        .chain(children)
        .collect::<Vec<_>>();
    let (session, mut stats) = Session::connect_stat(endpoint, &paths).await?;
    let target = match stats.remove(0) {
        Ok(entry) => Some(entry),
        Err(e) if e.remote_code() == Some(ErrorCode::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let into_dir = target.as_ref().is_some_and(|e| e.kind == Kind::Dir);
    // `-` is stdin. A `put` announces its size up front, so stdin is first spooled to a
    // private temporary file, which is then sent like any other and removed.
    let _spool;
    let spooled;
    let sources = if sources.iter().any(|s| s.as_os_str() == "-") {
        if sources.len() > 1 || into_dir || options.dir_target {
            return Err(usage(
                "bad_request",
                &url.path,
                "stdin (-) must be the only source, sent to the remote file's own name",
            ));
        }
        let spool = tokio::task::spawn_blocking(spool_stdin)
            .await
            .map_err(|e| CliError::Job(format!("io: reading stdin: {e}")))?
            .map_err(|e| CliError::Engine(EngineError::local("-", e)))?;
        spooled = [spool.path().join(STDIN_NAME)];
        _spool = spool;
        &spooled[..]
    } else {
        sources
    };
    if options.dir_target && !into_dir {
        return Err(match target {
            Some(_) => usage("not_a_directory", &url.path, "not a directory"),
            None => usage("not_found", &url.path, "no such directory"),
        });
    }
    if sources.len() > 1 && !into_dir {
        return Err(usage(
            "not_a_directory",
            &url.path,
            "with several sources the target must be an existing directory",
        ));
    }
    let mut items = Vec::with_capacity(sources.len());
    let mut refused = Refused {
        json: options.json,
        ..Refused::default()
    };
    let mut single_file = sources.len() == 1;
    for source in sources {
        // As with cp, a source that cannot be copied fails alone and the others go on.
        let item = std::fs::symlink_metadata(source)
            .map_err(|e| CliError::Engine(EngineError::local(source, e)))
            .and_then(|meta| {
                let kind = ferry_localfs::kind_of(meta.file_type());
                check_kind(&crate::format::local_path(source), kind, options.recursive)?;
                let remote = if into_dir {
                    path::join(&url.path, &local_name(source)?)
                } else {
                    url.path.clone()
                };
                Ok((kind, remote))
            });
        match item {
            Ok((kind, remote)) => {
                single_file &= kind == Kind::File;
                items.push((source.clone(), remote));
            }
            Err(e) => refused.report(&e),
        }
    }
    if items.is_empty() {
        return refused.nothing_to_copy(options);
    }
    let spec = JobSpec::Upload {
        items,
        policy: options.policy,
        remove_source: options.remove_source,
    };
    let mut known = HashMap::new();
    known.insert(url.path.clone(), target);
    if into_dir {
        // A child's answer counts only when it is sure: anything else the job asks again.
        for (path, stat) in paths.into_iter().skip(1).zip(stats) {
            match stat {
                Ok(entry) => known.insert(path, Some(entry)),
                Err(e) if e.remote_code() == Some(ErrorCode::NotFound) => known.insert(path, None),
                Err(_) => None,
            };
        }
    }
    let groundwork = Groundwork {
        session,
        stats: known,
    };
    run_job(endpoint, spec, options, single_file, refused, groundwork).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_come_from_the_last_component() {
        assert_eq!(local_name(Path::new("photos")).unwrap(), "photos");
        assert_eq!(local_name(Path::new("a/b c.txt")).unwrap(), "b c.txt");
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        assert_eq!(local_name(&inner.join(".")).unwrap(), "inner");
        assert_eq!(
            local_name(&inner.join("x/..")).unwrap_err().code(),
            "not_found"
        );
        assert_eq!(local_name(Path::new("/")).unwrap_err().code(), "bad_path");
    }
}
