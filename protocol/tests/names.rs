//! The name escape as PROTOCOL.md documents it: every example there decodes to the bytes it
//! names, plain names are unchanged on the wire, and escaped ones are refused by the rules of
//! older peers (which allowed no backslash), never taken for another file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ferry_protocol::path;
use ferry_protocol::{ListBatch, Request, decode_reply, decode_request};

#[test]
fn the_documented_examples_name_these_bytes() {
    let cases: &[(&str, &[u8])] = &[
        ("report.pdf", b"report.pdf"),
        ("caf\u{e9}", "caf\u{e9}".as_bytes()),
        ("two\\nlines", b"two\nlines"),
        ("back\\\\slash", b"back\\slash"),
        ("bell\\x07", b"bell\x07"),
        ("latin1-\\xe9t\\xe9", b"latin1-\xe9t\xe9"),
        ("\\x80\\x81\\xff", b"\x80\x81\xff"),
        ("csi\\u{9b}", "csi\u{9b}".as_bytes()),
    ];
    for (wire, raw) in cases {
        assert_eq!(path::name_bytes(wire).unwrap(), *raw, "{wire}");
        assert_eq!(path::encode(raw), *wire);
    }
}

#[test]
fn escaped_paths_travel_in_every_request_and_entry() {
    let line = br#"{"op":"rename","path":"in\\nbox/\\xff","to":"a\\\\b"}"#;
    let Request::Rename { path, to, .. } = decode_request(line).unwrap() else {
        panic!("not a rename");
    };
    assert_eq!(
        path::components(&path).unwrap(),
        ["in\\nbox", "\\xff"],
        "components stay in wire form"
    );
    assert_eq!(path::name_bytes("\\xff").unwrap(), &b"\xff"[..]);
    assert_eq!(path::name_bytes(&to).unwrap(), &b"a\\b"[..]);

    let batch: ListBatch = decode_reply(
        br#"{"ok":true,"entries":[{"name":"a\\tb","kind":"file","size":1,"mtime":0,"mode":420}],"more":false}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        path::name_bytes(&batch.entries[0].name).unwrap(),
        &b"a\tb"[..]
    );
}

#[test]
fn plain_names_are_what_they_always_were_and_escaped_ones_need_the_escape_aware_rules() {
    for plain in ["a.txt", "docs/my file's \"v2\".txt", "日本語/.hidden"] {
        assert_eq!(path::encode(plain.as_bytes()), plain);
        assert!(path::check(plain).is_ok());
    }
    // An older peer refused every backslash: an escaped name reaches it as an error, and a
    // raw control character is refused here as it was there.
    for escaped in ["a\\nb", "\\xff"] {
        assert!(escaped.contains('\\'));
        assert!(path::check(escaped).is_ok());
    }
    assert!(path::check("a\nb").is_err());
}
