//! What each pane shows, a local directory or a server, whatever side of the screen it is
//! on (a second server in the left pane has its own connection, [`OtherServer`]): the pane's
//! title word for it, the switch between the two (each pane remembers where it
//! was on the other kind of place, so switching back returns there), and which copies between
//! two places ferry can make.

use std::collections::HashMap;

use super::location::{Location, Side};
use super::server_link::ServerLink;

/// The word before a pane's path in its title: `Local`, or the server's label.
pub fn label<'a>(dir: &Location, server: &'a str) -> &'a str {
    match dir {
        Location::Local(_) => "Local",
        Location::Remote(_) => server,
    }
}

/// A pane on a server other than the main connection's (F9 in a pane that shows a server
/// connects that pane): its side and its own connection.
#[derive(Debug)]
pub struct OtherServer {
    pub side: Side,
    pub link: ServerLink,
}

/// Where each pane was on the kind of place it is not showing now.
#[derive(Debug, Default)]
pub struct Places {
    away: HashMap<Side, Location>,
}

impl Places {
    /// Where `side`'s pane goes when switched away from `current`: back where it last was on
    /// the other kind of place; the first time, the other pane's directory when that is of
    /// the wanted kind (the server's root, or the working directory, otherwise).
    pub fn switch(&mut self, side: Side, current: &Location, other: &Location) -> Location {
        let to = self
            .away
            .remove(&side)
            .unwrap_or_else(|| match (current, other) {
                (Location::Local(_), Location::Remote(_))
                | (Location::Remote(_), Location::Local(_)) => other.clone(),
                (Location::Local(_), Location::Local(_)) => Location::Remote(String::new()),
                (Location::Remote(_), Location::Remote(_)) => Location::Local(
                    std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("/")),
                ),
            });
        self.away.insert(side, current.clone());
        to
    }
}

/// The panes an operation's answer concerns, to list again. A local operation's answer names
/// the pane that asked; the server's come marked [`Side::Remote`] whichever pane asked, so
/// every pane showing the server. When the right pane shows a local directory, a `Remote`
/// answer may be either: both panes.
pub fn answered(side: Side, left: &Location, right: &Location) -> Vec<Side> {
    match (side, left, right) {
        (Side::Local, _, _) => vec![Side::Local],
        (Side::Remote, Location::Local(_), Location::Remote(_)) => vec![Side::Remote],
        (Side::Remote, _, _) => vec![Side::Local, Side::Remote],
    }
}

/// The transfer list's mark for a job from `from` to `to`: `↑` up to the server, `↓` down
/// from it, `→` within it.
pub fn arrow(from: &Location, to: &Location) -> &'static str {
    match (from, to) {
        (Location::Local(_), _) => "↑",
        (Location::Remote(_), Location::Local(_)) => "↓",
        (Location::Remote(_), Location::Remote(_)) => "→",
    }
}

/// Why a copy from `from` to `to` cannot be made, for the banner (`switch_key` is the key
/// that shows the server in a pane); `None` when it can (to or from the server, or between
/// two directories of the server).
pub fn refusal(from: &Location, to: &Location, switch_key: &str) -> Option<String> {
    match (from, to) {
        (Location::Local(_), Location::Local(_)) => Some(format!(
            "Both panes show local directories: ferry copies to, from and within the server \
             ({switch_key} shows the server in a pane); use your shell for a local copy"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pane_switches_to_the_other_kind_and_back_where_it_was() {
        let mut places = Places::default();
        let home = Location::Local("/home/ann".into());
        let docs = Location::Remote("docs".into());
        let to = places.switch(Side::Local, &home, &docs);
        assert_eq!(to, docs);
        let deeper = Location::Remote("docs/2024".into());
        assert_eq!(places.switch(Side::Local, &deeper, &docs), home);
        assert_eq!(places.switch(Side::Local, &home, &docs), deeper);
        // Both panes local: the server's root.
        assert_eq!(
            places.switch(Side::Remote, &home, &home),
            Location::Remote(String::new())
        );
    }

    #[test]
    fn the_servers_answers_reach_every_pane_that_may_show_it() {
        let (local, remote) = (Location::Local("/".into()), Location::Remote(String::new()));
        assert_eq!(answered(Side::Local, &remote, &remote), [Side::Local]);
        assert_eq!(answered(Side::Remote, &local, &remote), [Side::Remote]);
        assert_eq!(
            answered(Side::Remote, &remote, &remote),
            [Side::Local, Side::Remote]
        );
        assert_eq!(
            answered(Side::Remote, &remote, &local),
            [Side::Local, Side::Remote]
        );
    }

    #[test]
    fn the_arrow_says_where_the_bytes_go() {
        let (local, remote) = (Location::Local("/".into()), Location::Remote(String::new()));
        assert_eq!(arrow(&local, &remote), "↑");
        assert_eq!(arrow(&remote, &local), "↓");
        assert_eq!(arrow(&remote, &remote), "→");
    }

    #[test]
    fn only_a_copy_between_two_local_panes_is_refused() {
        let local = Location::Local("/tmp".into());
        let remote = Location::Remote(String::new());
        assert!(refusal(&local, &local, "Alt+L").is_some_and(|why| why.contains("Alt+L")));
        assert!(refusal(&local, &remote, "Alt+L").is_none());
        assert!(refusal(&remote, &local, "Alt+L").is_none());
        assert!(refusal(&remote, &remote, "Alt+L").is_none());
    }
}
