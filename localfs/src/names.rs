//! Local file names and their wire form: the one conversion between the bytes a local
//! filesystem holds and the protocol's name escape.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use ferry_protocol::path;

/// The wire form of a local file name: its bytes in the protocol's escape.
pub fn wire_name(name: &OsStr) -> String {
    path::encode(name.as_bytes()).into_owned()
}

/// The local file name a wire name stands for. A name that is not a valid escape (one a person
/// typed, say `a\b`) is taken as it is written.
pub fn os_name(wire: &str) -> OsString {
    match path::decode(wire) {
        Ok(raw) => OsString::from_vec(raw.into_owned()),
        Err(_) => OsString::from(wire),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_name_and_its_wire_form_turn_into_each_other() {
        let raw: &[u8] = b"a\n\xff\\";
        assert_eq!(wire_name(OsStr::from_bytes(raw)), "a\\n\\xff\\\\");
        assert_eq!(
            os_name(&wire_name(OsStr::from_bytes(raw))),
            OsStr::from_bytes(raw)
        );
        assert_eq!(os_name("typed\\q"), OsStr::new("typed\\q"));
    }
}
