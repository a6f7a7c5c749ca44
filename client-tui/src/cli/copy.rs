//! `ferry copy`: a file or tree from one remote location to another, on one server (copied
//! by the server itself) or two (streamed through this process's memory, never its disk).
//! What the target means follows `cp`: an existing directory receives the source under its
//! own name, anything else is the new name.

use std::collections::HashMap;

use ferry_protocol::{ErrorCode, Kind, path};

use super::error::{CliError, usage};
use super::locations::base_name;
use super::options::TransferOptions;
use super::watch::{Refused, run_job};
use crate::engine::{Endpoint, EngineError, Groundwork, JobSpec, JobSummary, Session};
use crate::url::RemoteUrl;

/// Copies `from` (on the server of `source`) to `to` (on the server of `dest`); `dir_target`:
/// the target was written with a trailing `/`, so it must be a directory.
pub async fn copy(
    source: &Endpoint,
    from: &RemoteUrl,
    dest: &Endpoint,
    to: &RemoteUrl,
    dir_target: bool,
    options: TransferOptions,
) -> Result<JobSummary, CliError> {
    let (session, mut stats) =
        Session::connect_stat(source, std::slice::from_ref(&from.path)).await?;
    let entry = stats
        .pop()
        .ok_or_else(|| CliError::Job("no answer about the source".into()))??;
    match entry.kind {
        Kind::Dir if !options.recursive => {
            return Err(usage(
                "is_a_directory",
                from.to_string(),
                "use -r to copy a directory",
            ));
        }
        Kind::Dir | Kind::File => {}
        Kind::Symlink | Kind::Other => {
            return Err(usage(
                "bad_request",
                from.to_string(),
                "only files and directories are copied",
            ));
        }
    }
    let single_file = entry.kind == Kind::File;
    let target = {
        let (_, mut there) = Session::connect_stat(dest, std::slice::from_ref(&to.path)).await?;
        there
            .pop()
            .ok_or_else(|| CliError::Job("no answer about the target".into()))?
    };
    let into = match target {
        Ok(entry) if entry.kind == Kind::Dir => path::join(&to.path, base_name(&from.path)),
        Ok(_) if dir_target => {
            return Err(usage("not_a_directory", to.to_string(), "not a directory"));
        }
        Ok(_) => to.path.clone(),
        Err(EngineError::Remote {
            code: ErrorCode::NotFound,
            ..
        }) if !dir_target => to.path.clone(),
        Err(EngineError::Remote {
            code: ErrorCode::NotFound,
            ..
        }) => return Err(usage("not_found", to.to_string(), "no such directory")),
        Err(e) => return Err(e.into()),
    };
    let spec = JobSpec::Relay {
        from: Box::new(source.clone()),
        to: Box::new(dest.clone()),
        items: vec![(from.path.clone(), into)],
        policy: options.policy,
        remove_source: options.remove_source,
    };
    let refused = Refused {
        json: options.json,
        ..Refused::default()
    };
    let groundwork = Groundwork {
        session,
        stats: HashMap::from([(from.path.clone(), Some(entry))]),
    };
    run_job(source, spec, options, single_file, refused, groundwork).await
}
