//! Checks the netlink targets share.

use tw::source::netlink::DecodeError;

/// A decode error points inside the buffer and reads as one printable line.
pub fn check_error(e: &DecodeError, len: usize) {
    if let DecodeError::Malformed { offset, .. } = e {
        assert!(*offset <= len, "offset {offset} past {len} bytes");
    }
    let msg = e.to_string();
    assert!(!msg.is_empty());
    assert!(
        !msg.chars().any(char::is_control),
        "error message holds control characters: {msg:?}"
    );
}
