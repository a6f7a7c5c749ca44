//! Rules about a command's remote locations: all on one server, and a wire path's last name.

use ferry_protocol::path;

use super::error::{CliError, usage};
use crate::engine::Endpoint;
use crate::url::RemoteUrl;

/// `bad_request` unless every location is on the server of `endpoint`: one command, one server;
/// `what` names the locations in the message (`sources`, `locations`).
pub(crate) fn one_server(
    endpoint: &Endpoint,
    urls: &[RemoteUrl],
    what: &str,
) -> Result<(), CliError> {
    for url in urls {
        if (url.host.as_str(), url.port) != (endpoint.host.as_str(), endpoint.port) {
            return Err(usage(
                "bad_request",
                url.to_string(),
                format!("all {what} must be on one server"),
            ));
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
