//! Rate limits in the TUI: the prompt that sets one (for all transfers, or for one job while
//! it runs), reading what was typed, and how a limit is shown in a job's row and the status
//! bar. The engine does the pacing; this only asks and tells.

use super::dialogs::{Dialog, InputPurpose};
use super::input::LineInput;
pub use super::jobs::RateTarget;

/// The prompt for `target`'s limit, starting from the `current` one (0: none); `number` is
/// the job's number as the transfer list shows it.
pub fn dialog(target: RateTarget, current: u64, number: Option<u64>) -> Dialog {
    let whom = match (target, number) {
        (RateTarget::Job(_), Some(number)) => format!("transfer #{number}"),
        (RateTarget::Job(_), None) => "this transfer".to_owned(),
        (RateTarget::All, _) => "all transfers".to_owned(),
    };
    let prefill = if current == 0 {
        String::new()
    } else {
        written(current)
    };
    Dialog::Input {
        title: format!("Rate limit for {whom} (e.g. 2M, 500K; empty or 0: none)"),
        input: LineInput::new(&prefill),
        purpose: InputPurpose::RateLimit(target),
    }
}

/// The limit typed into the prompt: empty is none (0).
pub fn parse(text: &str) -> Result<u64, String> {
    if text.trim().is_empty() {
        return Ok(0);
    }
    crate::engine::parse_rate(text).map_err(|e| format!("Rate limit {text:?}: {e}"))
}

/// A limit as it is shown: `4 MB/s`, in the powers of 1000 the prompt reads `4M` in.
pub fn label(bytes_per_second: u64) -> String {
    let size = humansize::format_size(
        bytes_per_second,
        humansize::DECIMAL.decimal_places(1).space_after_value(true),
    );
    format!("{size}/s")
}

/// A limit as it can be typed back: exact bytes, with a unit when one fits.
fn written(bytes_per_second: u64) -> String {
    for (unit, size) in [("G", 1_000_000_000), ("M", 1_000_000), ("K", 1_000)] {
        if bytes_per_second.is_multiple_of(size) {
            return format!("{}{unit}", bytes_per_second / size);
        }
    }
    bytes_per_second.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_reads_back_as_it_was_shown_in_the_prompt() {
        for rate in [4_000_000, 1_500_000, 2_000_000_000, 1234] {
            assert_eq!(parse(&written(rate)), Ok(rate));
        }
        assert_eq!(parse(""), Ok(0));
        assert!(parse("quick").is_err());
        assert_eq!(label(4_000_000), "4 MB/s");
    }
}
