//! `--exclude` / `--include`: rsync's order of rules. The rules are tried in the order given
//! and the first that matches an entry decides; an entry no rule matches is included. A
//! directory that is excluded is not looked into: nothing below it is synced (an `--include`
//! cannot bring a file back from inside it), and on the destination nothing below it is deleted.
//!
//! A pattern is a shell glob (`*` and `?` stop at `/`, `**` crosses it, `[a-z]`, `{a,b}`)
//! compiled by `globset`. One that holds a `/` (other than a trailing one) is anchored to the
//! tree's root and matched against the whole relative path (`/build` and `src/*.o` alike);
//! one without matches the last name at any depth (`*.tmp`). A trailing `/` matches only
//! directories. Paths are matched in the form ferry prints them (the name escape).

use globset::{Glob, GlobBuilder, GlobMatcher};

/// Whether a rule keeps or drops what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Include,
    Exclude,
}

/// One `--include` or `--exclude`, compiled.
#[derive(Debug, Clone)]
struct Rule {
    kind: RuleKind,
    matcher: GlobMatcher,
    /// Matched against the whole relative path, not the last name.
    anchored: bool,
    /// Matches directories only (the pattern ended in `/`).
    dirs_only: bool,
}

/// The rules in the order given.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    rules: Vec<Rule>,
}

/// A pattern that is not a glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern}: {message}")]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

impl Filter {
    /// Compiles `rules` (kind and pattern, in the command line's order).
    pub fn new(rules: &[(RuleKind, String)]) -> Result<Self, PatternError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (kind, pattern) in rules {
            let error = |message: String| PatternError {
                pattern: pattern.clone(),
                message,
            };
            let dirs_only = pattern.ends_with('/');
            let body = pattern.trim_end_matches('/');
            let anchored = body.contains('/');
            let body = body.trim_start_matches('/');
            if body.is_empty() {
                return Err(error("an empty pattern matches nothing".into()));
            }
            let glob: Glob = GlobBuilder::new(body)
                .literal_separator(true)
                .build()
                .map_err(|e| error(e.kind().to_string()))?;
            compiled.push(Rule {
                kind: *kind,
                matcher: glob.compile_matcher(),
                anchored,
                dirs_only,
            });
        }
        Ok(Self { rules: compiled })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the entry at `rel` (a relative wire path) is excluded by its own rule, its
    /// parents not considered: the first rule that matches decides.
    fn decides_excluded(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.rules
            .iter()
            .find(|rule| {
                (!rule.dirs_only || is_dir)
                    && rule
                        .matcher
                        .is_match(if rule.anchored { rel } else { name })
            })
            .is_some_and(|rule| rule.kind == RuleKind::Exclude)
    }

    /// Whether `rel` is left out of the sync: excluded itself, or inside an excluded directory.
    pub fn excluded(&self, rel: &str, is_dir: bool) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        let mut end = 0;
        while let Some(at) = rel[end..].find('/') {
            let parent = &rel[..end + at];
            if self.decides_excluded(parent, true) {
                return true;
            }
            end += at + 1;
        }
        self.decides_excluded(rel, is_dir)
    }

    /// Whether `rel` is excluded by its own rule while its parents are not: the one entry a
    /// plan names for a whole excluded subtree.
    pub fn excluded_here(&self, rel: &str, is_dir: bool) -> bool {
        let parent_excluded = rel
            .rfind('/')
            .is_some_and(|at| self.excluded(&rel[..at], true));
        !parent_excluded && self.decides_excluded(rel, is_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(rules: &[(&str, &str)]) -> Filter {
        let rules = rules
            .iter()
            .map(|(kind, pattern)| {
                let kind = if *kind == "+" {
                    RuleKind::Include
                } else {
                    RuleKind::Exclude
                };
                (kind, (*pattern).to_owned())
            })
            .collect::<Vec<_>>();
        Filter::new(&rules).unwrap()
    }

    #[test]
    fn first_match_wins_in_the_order_given() {
        let keep_logs = filter(&[("+", "keep.log"), ("-", "*.log")]);
        assert!(!keep_logs.excluded("a/keep.log", false));
        assert!(keep_logs.excluded("a/other.log", false));
        assert!(!keep_logs.excluded("a/other.txt", false));
        let drop_all = filter(&[("-", "*.log"), ("+", "keep.log")]);
        assert!(drop_all.excluded("keep.log", false));
    }

    #[test]
    fn a_slash_anchors_and_a_bare_name_matches_at_any_depth() {
        let f = filter(&[("-", "/build"), ("-", "src/*.o"), ("-", "*.tmp")]);
        assert!(f.excluded("build", true));
        assert!(f.excluded("build/x/y", false));
        assert!(!f.excluded("sub/build", true));
        assert!(f.excluded("src/a.o", false));
        assert!(!f.excluded("src/deep/a.o", false));
        assert!(!f.excluded("x/src/a.o", false));
        assert!(f.excluded("x/y/z.tmp", false));
        let deep = filter(&[("-", "src/**/*.o")]);
        assert!(deep.excluded("src/deep/er/a.o", false));
    }

    #[test]
    fn a_trailing_slash_matches_directories_only() {
        let f = filter(&[("-", "cache/")]);
        assert!(f.excluded("a/cache", true));
        assert!(f.excluded("a/cache/file", false));
        assert!(!f.excluded("a/cache", false));
    }

    #[test]
    fn an_excluded_directory_is_not_looked_into() {
        let f = filter(&[("+", "*.keep"), ("-", "tmp/")]);
        assert!(f.excluded("tmp/a.keep", false));
        assert!(f.excluded_here("tmp", true));
        assert!(!f.excluded_here("tmp/x", false));
        assert!(!f.excluded("other/a.keep", false));
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = Filter::new(&[(RuleKind::Exclude, "a[".into())]).unwrap_err();
        assert_eq!(err.pattern, "a[");
        assert!(Filter::new(&[(RuleKind::Exclude, "/".into())]).is_err());
    }
}
