//! `ferry mkdir`, `ferry rm` and `ferry mv`: one request each, with the argument checks a shell
//! user expects (`rm` wants `-r` for a directory, `mv` into an existing directory keeps the
//! name).

use ferry_protocol::{Kind, path};

use super::{CliError, base_name, usage};
use crate::engine::{Endpoint, Session};
use crate::url::RemoteUrl;

/// Creates a directory and its missing parents.
pub async fn mkdir(endpoint: &Endpoint, url: &RemoteUrl) -> Result<(), CliError> {
    let mut session = Session::connect(endpoint).await?;
    Ok(session.mkdir(&url.path).await?)
}

/// Removes a file, or a directory with `recursive`.
pub async fn rm(endpoint: &Endpoint, url: &RemoteUrl, recursive: bool) -> Result<(), CliError> {
    let mut session = Session::connect(endpoint).await?;
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
/// existing directory as target receives the entry under its own name.
pub async fn mv(endpoint: &Endpoint, url: &RemoteUrl, to: &str) -> Result<(), CliError> {
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
        let trimmed = to.trim_matches('/').to_owned();
        path::check(&trimmed).map_err(|e| usage("bad_path", to, e.to_string()))?;
        trimmed
    };
    let mut session = Session::connect(endpoint).await?;
    let target = match session.try_stat(&target).await? {
        Some(entry) if entry.kind == Kind::Dir => path::join(&target, base_name(&url.path)),
        _ => target,
    };
    Ok(session.rename(&url.path, &target).await?)
}
