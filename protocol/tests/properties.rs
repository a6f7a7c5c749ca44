//! Properties of the protocol crate over generated inputs: the path rules never let an escape
//! through, every header type survives an encode/decode round trip, and the frame decoder
//! splits a stream the same way whatever the read sizes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Bytes, BytesMut};
use ferry_protocol::path::{self, MAX_NAME_LEN, MAX_PATH_LEN};
use ferry_protocol::{
    Digest, Done, Entry, ErrorCode, Frame, FrameDecoder, GetReply, GetTrailer, HelloReply, Kind,
    ListBatch, PartialReply, Put, PutReply, PutTrailer, Request, StatReply, SummaryReply, Token,
    decode_reply, decode_request, encode_err, encode_header, encode_ok, encode_request,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Names built from the pieces escapes are made of, so the interesting cases come up often.
fn tricky_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("...".to_owned()),
        Just(".ferry-part.x".to_owned()),
        "[a-z.]{1,4}",
        "[a-zü日 .\\\\/\u{0}\u{1}\u{7f}\u{85}\u{9f}\u{a0}\u{2028}\u{202e}\u{feff}]{0,6}",
        "x{250,260}",
        // Escapes, well and badly formed.
        "([a-z]|\\\\(\\\\|n|t|r|x[0-9a-fA-F]{0,3}|u\\{[0-9a-f]{0,7}\\}?|q)){1,6}",
    ]
}

/// Raw names as a filesystem may hold them: any bytes but `/` and NUL.
fn raw_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..=MAX_NAME_LEN),
        prop::collection::vec(
            prop::sample::select(vec![
                b'a', b'\\', b'\n', 0x01, 0x7f, 0x80, 0xc2, 0x85, 0xff, b'.'
            ]),
            1..12
        ),
    ]
    .prop_map(|mut raw| {
        raw.retain(|&b| b != b'/' && b != 0);
        raw
    })
}

fn tricky_path() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(tricky_name(), 0..6).prop_map(|names| names.join("/")),
        (prop::bool::ANY, prop::collection::vec(tricky_name(), 1..4)).prop_map(|(abs, names)| {
            let joined = names.join("/");
            if abs { format!("/{joined}") } else { joined }
        }),
        // Around the whole-path limit.
        (4090usize..4100).prop_map(|len| {
            let mut path = "abcdefgh/".repeat(len / 9 + 1);
            path.truncate(len);
            path.trim_end_matches('/').to_owned()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_path_is_refused_or_splits_into_plain_names_that_join_back(wire in tricky_path()) {
        match path::components(&wire) {
            Err(_) => prop_assert!(path::check(&wire).is_err()),
            Ok(names) => {
                prop_assert!(!wire.starts_with('/'));
                if wire.is_empty() {
                    prop_assert!(names.is_empty());
                } else {
                    prop_assert_eq!(names.join("/"), wire.clone());
                }
                let mut raw_len = 0;
                for name in names {
                    prop_assert!(!name.contains('/'), "{:?}", name);
                    prop_assert!(!name.chars().any(char::is_control), "{:?}", name);
                    let raw = path::name_bytes(name).unwrap();
                    prop_assert!(!raw.is_empty() && raw.len() <= MAX_NAME_LEN, "{:?}", name);
                    prop_assert!(*raw != *b"." && *raw != *b"..", "{:?}", name);
                    prop_assert!(!raw.contains(&b'/') && !raw.contains(&0), "{:?}", name);
                    prop_assert_eq!(path::encode(&raw), name, "one wire form per name");
                    raw_len += raw.len() + 1;
                }
                prop_assert!(raw_len <= MAX_PATH_LEN + 1);
            }
        }
    }

    #[test]
    fn split_last_and_join_are_inverse_on_valid_paths(wire in tricky_path()) {
        if path::check(&wire).is_ok()
            && let Some((parent, name)) = path::split_last(&wire)
        {
            prop_assert_eq!(path::join(parent, name), wire.clone());
            prop_assert!(path::check(parent).is_ok());
            prop_assert!(path::check_name(name).is_ok());
        }
    }

    #[test]
    fn every_raw_name_crosses_the_wire_exactly(raw in raw_name()) {
        let wire = path::encode(&raw);
        // The generator can leave nothing (it drops `/` and NUL, so `[0]` becomes `[]`), about
        // once in 30 runs: an empty name is no name, and the wire must refuse it.
        if raw.is_empty() {
            prop_assert!(wire.is_empty());
            prop_assert!(path::name_bytes(&wire).is_err());
            prop_assert!(path::check_name(&wire).is_err());
            return Ok(());
        }
        prop_assert!(!wire.chars().any(char::is_control), "{:?}", wire);
        prop_assert_eq!(path::decode(&wire).unwrap(), raw.as_slice());
        if raw != b"." && raw != b".." {
            prop_assert_eq!(path::name_bytes(&wire).unwrap(), raw.as_slice());
            // And inside a JSON header, as an entry's name.
            let entry = Entry { name: wire.clone().into_owned(), kind: Kind::File, size: 0,
                mtime: 0, mode: 0, link: None, error: None, owner: None, target: None };
            let line = encode_ok(&StatReply { entry, id: None }).unwrap();
            prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            let back: StatReply = decode_reply(&line[..line.len() - 1]).unwrap().unwrap();
            prop_assert_eq!(path::name_bytes(&back.entry.name).unwrap(), raw.as_slice());
        } else {
            prop_assert!(path::check_name(&wire).is_err());
        }
    }

    #[test]
    fn partial_names_are_valid_and_reserved(name in tricky_name()) {
        if path::check_name(&name).is_ok() {
            let partial = path::partial_name(&name);
            prop_assert!(path::check_name(&partial).is_ok(), "{:?}", partial);
            prop_assert!(path::is_partial_name(&partial));
        }
    }
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::File),
        Just(Kind::Dir),
        Just(Kind::Symlink),
        Just(Kind::Other),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        any::<String>(),
        kind(),
        any::<u64>(),
        any::<i64>(),
        any::<u32>(),
        prop::option::of(kind()),
    )
        .prop_map(|(name, kind, size, mtime, mode, link)| Entry {
            name,
            kind,
            size,
            mtime,
            mode,
            link,
            error: None,
            owner: None,
            target: None,
        })
}

fn request() -> impl Strategy<Value = Request> {
    let s = any::<String>;
    prop_oneof![
        (
            any::<u32>(),
            prop::option::of(s()),
            prop::option::of(s()),
            prop::option::of(s())
        )
            .prop_map(|(version, token, user, password)| Request::Hello {
                version,
                token: token.map(Token),
                user,
                password: password.map(Token),
            }),
        s().prop_map(|path| Request::Stat {
            path,
            identity: false
        }),
        s().prop_map(|path| Request::List { path }),
        s().prop_map(|path| Request::Walk { path }),
        s().prop_map(|path| Request::Summary { path }),
        (s(), prop::option::of(prop::collection::vec(s(), 0..8)))
            .prop_map(|(path, paths)| Request::Digests { path, paths }),
        (s(), any::<u64>(), prop::option::of(any::<u64>())).prop_map(|(path, offset, length)| {
            Request::Get {
                path,
                offset,
                length,
            }
        }),
        (
            s(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            prop::option::of(digest()),
            any::<bool>(),
            prop::option::of(any::<i64>()),
            prop::option::of(any::<u32>()),
        )
            .prop_map(
                |(path, size, offset, overwrite, digest, trailer, mtime, mode)| {
                    Request::Put(Put {
                        path,
                        size,
                        offset,
                        overwrite,
                        digest,
                        trailer,
                        mtime,
                        mode,
                    })
                }
            ),
        s().prop_map(|path| Request::Partial { path }),
        (s(), any::<bool>(), any::<Option<u32>>()).prop_map(|(path, parents, mode)| {
            Request::Mkdir {
                path,
                parents,
                mode,
            }
        }),
        (s(), s(), any::<bool>()).prop_map(|(path, to, overwrite)| Request::Rename {
            path,
            to,
            overwrite
        }),
        (
            s(),
            any::<bool>(),
            any::<Option<u64>>(),
            any::<Option<i64>>()
        )
            .prop_map(|(path, recursive, if_size, if_mtime)| Request::Remove {
                path,
                recursive,
                if_size,
                if_mtime,
                if_digest: None,
            }),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(ErrorCode::ALL.to_vec())
}

/// `encode_ok` gives one line that `decode_reply` turns back into the same reply.
fn reply_round_trips<T>(reply: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let line = encode_ok(reply).unwrap();
    prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    prop_assert_eq!(line.last(), Some(&b'\n'));
    prop_assert!(line.starts_with(br#"{"ok":true"#), "{:?}", line);
    let back: T = decode_reply(&line[..line.len() - 1]).unwrap().unwrap();
    prop_assert_eq!(&back, reply);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn every_request_round_trips(request in request()) {
        let line = encode_request(&request).unwrap();
        prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let back = decode_request(&line[..line.len() - 1]).unwrap();
        prop_assert_eq!(back.payload_size(), request.payload_size());
        prop_assert_eq!(back, request);
    }

    #[test]
    fn every_reply_round_trips(
        version in any::<u32>(),
        text in any::<String>(),
        flag in any::<bool>(),
        numbers in any::<[u64; 4]>(),
        mtime in any::<i64>(),
        mode in any::<u32>(),
        digest in digest(),
        entry in entry(),
        entries in prop::collection::vec(entry(), 0..8),
        length in prop::option::of(digest()),
    ) {
        let [a, b, c, d] = numbers;
        reply_round_trips(&HelloReply { version, server: text, read_only: flag, identity: None, home: None })?;
        reply_round_trips(&StatReply { entry, id: None })?;
        reply_round_trips(&ListBatch { entries, more: flag, skipped: a })?;
        reply_round_trips(&SummaryReply { files: a, dirs: b, bytes: c, skipped: d })?;
        reply_round_trips(&GetReply { size: a, file_size: b, offset: c, mtime, mode })?;
        reply_round_trips(&GetTrailer { digest })?;
        reply_round_trips(&PutReply { digest, file_size: d })?;
        reply_round_trips(&PartialReply { length: b, digest: length })?;
        reply_round_trips(&Done {})?;
    }

    #[test]
    fn errors_and_trailers_round_trip(code in error_code(), message in "\\PC{0,64}", digest in digest()) {
        let line = encode_err(code, &message);
        prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let err = decode_reply::<Done>(&line[..line.len() - 1]).unwrap().unwrap_err();
        prop_assert_eq!(err.code, code);
        prop_assert_eq!(err.message, message);

        let trailer = PutTrailer { digest };
        let line = encode_header(&trailer).unwrap();
        let back: PutTrailer = serde_json::from_slice(&line[..line.len() - 1]).unwrap();
        prop_assert_eq!(back, trailer);
    }
}

/// A message on the wire: a request header and, for a `put`, its payload of any bytes.
fn message() -> impl Strategy<Value = (Request, Vec<u8>)> {
    prop_oneof![
        request()
            .prop_filter("payloads come from the put arm", |r| !matches!(
                r,
                Request::Put(_)
            ))
            .prop_map(|r| (r, Vec::new())),
        (
            "\\PC{0,12}",
            prop::collection::vec(any::<u8>(), 0..300),
            any::<bool>()
        )
            .prop_map(|(path, payload, overwrite)| {
                let put = Put {
                    path,
                    size: payload.len() as u64,
                    offset: 0,
                    overwrite,
                    digest: None,
                    trailer: false,
                    mtime: None,
                    mode: None,
                };
                (Request::Put(put), payload)
            }),
    ]
}

/// Decodes `stream` fed in pieces cut at `cuts`, announcing each header's payload.
fn decode_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        buf.extend_from_slice(&stream[start..end]);
        start = end;
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            match frame {
                Frame::Header(line) => {
                    decoder.expect_payload(decode_request(&line).unwrap().payload_size());
                    frames.push(Frame::Header(line));
                }
                Frame::Payload(chunk) => {
                    assert!(!chunk.is_empty());
                    match frames.last_mut() {
                        Some(Frame::Payload(prev)) => {
                            let mut joined = BytesMut::from(&prev[..]);
                            joined.extend_from_slice(&chunk);
                            *prev = joined.freeze();
                        }
                        _ => frames.push(Frame::Payload(chunk)),
                    }
                }
            }
        }
    }
    assert_eq!(decoder.decode_eof(&mut buf), Ok(None));
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_chunking_of_a_valid_stream_gives_the_same_frames(
        messages in prop::collection::vec(message(), 1..12),
        cut_points in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (request, payload) in &messages {
            let line = encode_request(request).unwrap();
            expected.push(Frame::Header(Bytes::copy_from_slice(&line[..line.len() - 1])));
            stream.extend_from_slice(&line);
            if !payload.is_empty() {
                expected.push(Frame::Payload(Bytes::copy_from_slice(payload)));
                stream.extend_from_slice(payload);
            }
        }
        let mut cuts: Vec<usize> = cut_points.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(decode_in_pieces(&stream, &cuts), expected.clone());
        // One byte at a time, the harshest chunking.
        let every: Vec<usize> = (1..stream.len()).collect();
        prop_assert_eq!(decode_in_pieces(&stream, &every), expected);
    }
}
