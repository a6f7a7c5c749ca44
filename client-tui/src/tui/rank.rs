//! The `/` filter's ranking: which names a filter keeps and in what order, scored by
//! `nucleo-matcher` (the matcher of the `nucleo` crate, without its threaded worker).
//!
//! Names that hold the filter as a substring (ignoring case) come first, best scored first:
//! `/1999` shows `photos-1999` and `1999.tar` before anything else. Names that hold its
//! letters only scattered, in order (`r`…`d`…`m` in `README.md`), follow them, also best
//! first: a name half remembered is still found, below the names that match outright.

use nucleo_matcher::pattern::{Atom, AtomKind, CaseMatching, Normalization};
use nucleo_matcher::{Config, Matcher, Utf32Str};

/// How well a name matches a filter: higher is better; substring matches outrank every
/// scattered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    substring: bool,
    score: u16,
}

/// Scores names against one filter.
#[derive(Debug)]
pub struct Ranker {
    matcher: Matcher,
    substring: Atom,
    scattered: Atom,
    buf: Vec<char>,
}

impl Ranker {
    pub fn new(filter: &str) -> Ranker {
        let atom = |kind| {
            Atom::new(
                filter,
                CaseMatching::Ignore,
                Normalization::Smart,
                kind,
                false,
            )
        };
        Ranker {
            matcher: Matcher::new(Config::DEFAULT),
            substring: atom(AtomKind::Substring),
            scattered: atom(AtomKind::Fuzzy),
            buf: Vec::new(),
        }
    }

    /// The rank of `name`, or `None` when the filter's letters are not all in it in order.
    pub fn rank(&mut self, name: &str) -> Option<Rank> {
        let hay = Utf32Str::new(name, &mut self.buf);
        // Scattered first: most names of a big directory fail it at once, and only the few
        // that pass are looked at again for the whole filter.
        let scattered = self.scattered.score(hay, &mut self.matcher)?;
        Some(match self.substring.score(hay, &mut self.matcher) {
            Some(score) => Rank {
                substring: true,
                score,
            },
            None => Rank {
                substring: false,
                score: scattered,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked<'a>(filter: &str, names: &[&'a str]) -> Vec<&'a str> {
        let mut ranker = Ranker::new(filter);
        let mut kept: Vec<(Rank, &str)> = names
            .iter()
            .filter_map(|n| ranker.rank(n).map(|r| (r, *n)))
            .collect();
        kept.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        kept.into_iter().map(|(_, n)| n).collect()
    }

    #[test]
    fn a_substring_outranks_scattered_letters() {
        let names = [
            "1a9b9c9.txt",
            "report-2019-09-19.pdf",
            "photos-1999",
            "x1999y.tar",
            "notes.md",
        ];
        let shown = ranked("1999", &names);
        assert_eq!(shown.len(), 4, "{shown:?}");
        let (exact, scattered) = shown.split_at(2);
        let mut exact = exact.to_vec();
        exact.sort_unstable();
        assert_eq!(exact, ["photos-1999", "x1999y.tar"]);
        assert!(scattered.contains(&"1a9b9c9.txt"));
        assert!(scattered.contains(&"report-2019-09-19.pdf"));
    }

    #[test]
    fn letters_must_come_in_order_and_case_is_ignored() {
        assert!(Ranker::new("rdm").rank("README.md").is_some());
        assert!(Ranker::new("mdr").rank("README.md").is_none());
        assert!(Ranker::new("READ").rank("readme").is_some());
    }

    #[test]
    fn a_word_start_outranks_a_match_inside_a_word() {
        assert_eq!(
            ranked("log", &["catalog", "log.txt"]),
            ["log.txt", "catalog"]
        );
    }
}
