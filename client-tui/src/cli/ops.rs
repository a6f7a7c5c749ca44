//! `ferry mkdir`, `ferry rm`, `ferry mv` and `ferry partials`: a request or two per location, with the argument checks a shell
//! user expects (`rm` wants `-r` for a directory, `mv` into an existing directory keeps the
//! name).

use ferry_protocol::{ErrorCode, Kind, path};

use super::error::{CliError, usage};
use super::locations::{base_name, one_server};
use crate::engine::{Endpoint, EngineError, Session};
use crate::url::RemoteUrl;

/// Creates each of `urls` (all on the server of `endpoint`) and its missing parents. As with
/// `mkdir`, one that cannot be made is reported on its own line and the others are still made.
pub async fn mkdir(endpoint: &Endpoint, urls: &[RemoteUrl]) -> Result<(), CliError> {
    one_server(endpoint, urls, "locations")?;
    let mut session = Session::connect(endpoint).await?;
    let mut failed = 0;
    for url in urls {
        let made = session.mkdir(&url.path).await.map_err(CliError::from);
        failed += each(made)?;
    }
    outcome(failed)
}

/// Removes each of `urls` (all on the server of `endpoint`): files, or directories with
/// `recursive`. As with `rm`, one that cannot go is reported on its own line and the others
/// still go; the command fails if any did.
pub async fn rm(endpoint: &Endpoint, urls: &[RemoteUrl], recursive: bool) -> Result<(), CliError> {
    one_server(endpoint, urls, "locations")?;
    let mut session = Session::connect(endpoint).await?;
    let mut failed = 0;
    for url in urls {
        failed += each(remove_one(&mut session, url, recursive).await)?;
    }
    outcome(failed)
}

/// One location's result in a command over several: a failure is printed and counted (1), a
/// broken connection ends the command, as nothing more can be tried.
fn each(result: Result<(), CliError>) -> Result<u64, CliError> {
    match result {
        Ok(()) => Ok(0),
        Err(CliError::Engine(e @ (EngineError::Connection { .. } | EngineError::Protocol(_)))) => {
            Err(e.into())
        }
        Err(e) => {
            eprintln!("ferry: {}", e.shown());
            Ok(1)
        }
    }
}

fn outcome(failed: u64) -> Result<(), CliError> {
    match failed {
        0 => Ok(()),
        failed => Err(CliError::Reported { failed }),
    }
}

async fn remove_one(
    session: &mut Session,
    url: &RemoteUrl,
    recursive: bool,
) -> Result<(), CliError> {
    let entry = session.stat(&url.path).await?;
    if entry.kind == Kind::Dir && !recursive {
        return Err(usage(
            "is_a_directory",
            &url.path,
            "use -r to remove a directory and what it holds",
        ));
    }
    Ok(session.remove(&url.path, recursive).await?)
}

/// Moves `url` to `to`: a wire path on the same server or a `ferry://` location naming it. An
/// existing directory as target receives the entry under its own name. An existing entry at
/// the end is replaced only with `overwrite`.
pub async fn mv(
    endpoint: &Endpoint,
    url: &RemoteUrl,
    to: &str,
    overwrite: bool,
) -> Result<(), CliError> {
    let target = if RemoteUrl::looks_remote(to) {
        let target: RemoteUrl = to
            .parse()
            .map_err(|e: crate::url::UrlError| usage("bad_path", to, e.0))?;
        if (target.host.as_str(), target.port) != (url.host.as_str(), url.port) {
            return Err(usage(
                "bad_request",
                to,
                "mv works within one server; use get and put to copy between servers",
            ));
        }
        target.path
    } else {
        crate::url::wire_path(to.trim_matches('/').as_bytes())
            .map_err(|e| usage("bad_path", to, e.to_string()))?
    };
    // As with `mv` and `cp`: a target ending in `/` names a directory that must exist.
    let into_dir = to.ends_with('/');
    let mut session = Session::connect(endpoint).await?;
    let target = match session.try_stat(&target).await? {
        Some(entry) if entry.kind == Kind::Dir => path::join(&target, base_name(&url.path)),
        None if into_dir => return Err(usage("not_found", target, "no such directory")),
        Some(_) if into_dir => return Err(usage("not_a_directory", target, "not a directory")),
        _ => target,
    };
    match session.rename_with(&url.path, &target, overwrite).await {
        Err(e) if e.remote_code() == Some(ErrorCode::AlreadyExists) => Err(usage(
            "already_exists",
            target,
            "the destination exists (use --overwrite to replace it)",
        )),
        moved => Ok(moved?),
    }
}

/// `ferry partials URL`: the caller's hidden partial uploads in the directory `url`, one per
/// line (size, last written, name), or with `remove` (`--rm URL/NAME...`) deletes those partials.
pub async fn partials(
    endpoint: &Endpoint,
    urls: &[RemoteUrl],
    remove: bool,
) -> Result<(), CliError> {
    one_server(endpoint, urls, "locations")?;
    let mut session = Session::connect(endpoint).await?;
    if remove {
        let mut failed = 0;
        for url in urls {
            failed += each(session.discard(&url.path).await.map_err(CliError::from))?;
        }
        return outcome(failed);
    }
    for url in urls {
        let reply = session.partials(&url.path).await?;
        let mut listed = reply.partials;
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        for partial in &listed {
            println!(
                "{:>10}  {}  {}",
                crate::format::size(partial.size),
                crate::format::mtime(partial.mtime),
                crate::format::escape_name(&path::join(&url.path, &partial.name))
            );
        }
        if reply.more {
            eprintln!(
                "ferry: {url}: more partial uploads than one listing holds; remove some and list again"
            );
        }
        if reply.unnamed > 0 {
            eprintln!(
                "ferry: {url}: {} partial uploads of long names this server cannot name",
                reply.unnamed
            );
        }
    }
    Ok(())
}
