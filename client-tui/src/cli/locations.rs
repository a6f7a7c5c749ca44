//! Rules about a command's remote locations: all on one server, home-relative ssh paths
//! resolved, and a wire path's last name.

use ferry_protocol::path;

use super::error::{CliError, usage};
use crate::engine::{Endpoint, EngineError, Session};
use crate::url::RemoteUrl;

/// `bad_request` unless every location is on the server of `endpoint`: one command, one server;
/// `what` names the locations in the message (`sources`, `locations`).
pub(crate) fn one_server(
    endpoint: &Endpoint,
    urls: &[RemoteUrl],
    what: &str,
) -> Result<(), CliError> {
    for url in urls {
        if url.endpoint(None).address() != endpoint.address() {
            return Err(usage(
                "bad_request",
                url.to_string(),
                format!("all {what} must be on one server"),
            ));
        }
    }
    Ok(())
}

/// Resolves home-relative ssh locations (`nas:photos`) under the remote home: one connection
/// to the first such location's server asks where it is (`hello`'s `home`); over ssh it also
/// makes the shared master the command's other connections use. Locations on another server
/// are left for `one_server` to refuse.
pub async fn resolve_homes(urls: Vec<&mut RemoteUrl>) -> Result<(), CliError> {
    let Some(first) = urls.iter().find(|url| url.needs_home()) else {
        return Ok(());
    };
    let endpoint = first.endpoint(None);
    let session = Session::connect(&endpoint).await?;
    let Some(home) = session.home().map(str::to_owned) else {
        return Err(EngineError::Refused {
            code: "no_home",
            path: first.to_string(),
            message: "the server did not say where your home directory is: write the path \
                      from / (host:/path)"
                .into(),
        }
        .into());
    };
    for url in urls {
        if url.needs_home() && url.endpoint(None).address() == endpoint.address() {
            *url = url.under_home(&home);
        }
    }
    Ok(())
}

/// The last name of a wire path (`""` for the root).
pub(crate) fn base_name(wire: &str) -> &str {
    path::split_last(wire).map_or("", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_name_is_the_last_name() {
        assert_eq!(base_name("a/b c"), "b c");
        assert_eq!(base_name(""), "");
    }
}
