//! Buffers of secret bytes that grow without leaving copies behind.
//!
//! `Vec`'s own growth moves the bytes to a bigger allocation and frees the old one as it is:
//! a `Zeroizing<Vec<u8>>` zeroizes only the allocation it ends with, so every earlier one
//! stays in freed memory, readable by whatever reuses it. Where a buffer of secrets cannot be
//! sized exactly up front (the injection script is; see `script`), it grows through [`reserve`]:
//! a new zeroizing buffer, a copy, and the old buffer zeroized as it is dropped.

use std::io::{self, Read};
use std::path::Path;

use zeroize::Zeroizing;

/// Make room for `additional` more bytes in `buf` without `Vec`'s unzeroized reallocation
/// (at least doubling, so that a buffer grown a little at a time is copied few times).
pub(crate) fn reserve(buf: &mut Zeroizing<Vec<u8>>, additional: usize) {
    if buf.capacity() - buf.len() >= additional {
        return;
    }
    let wanted = buf.len().saturating_add(additional);
    let mut bigger = Zeroizing::new(Vec::with_capacity(wanted.max(buf.capacity() * 2)));
    bigger.extend_from_slice(buf);
    // The old buffer is dropped here, and zeroized (its whole capacity) as it goes.
    *buf = bigger;
}

/// The whole contents of `path` in a zeroizing buffer, read without any unzeroized copy (for
/// `/proc/<pid>/environ`, whose size nothing tells in advance: `/proc` files report 0).
pub(crate) fn read_file(path: &Path) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = Zeroizing::new(vec![0u8; 4096]);
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            let more = buf.len();
            reserve(&mut buf, more);
            let capacity = buf.capacity();
            buf.resize(capacity, 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_by_hand_keeps_the_bytes_and_moves_them_once() {
        let mut buf = Zeroizing::new(Vec::with_capacity(4));
        buf.extend_from_slice(b"abcd");
        reserve(&mut buf, 0);
        assert_eq!(buf.capacity(), 4, "no growth when there is room");
        reserve(&mut buf, 1);
        assert!(buf.capacity() >= 8);
        let (capacity, at) = (buf.capacity(), buf.as_ptr());
        buf.extend_from_slice(b"efgh");
        assert_eq!(&buf[..], b"abcdefgh");
        assert_eq!(
            (buf.capacity(), buf.as_ptr()),
            (capacity, at),
            "Vec did not grow it"
        );
    }

    #[test]
    fn reads_files_larger_than_the_first_buffer() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let contents: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(file.path(), &contents).unwrap();
        assert_eq!(&read_file(file.path()).unwrap()[..], &contents[..]);
        let environ = read_file(Path::new("/proc/self/environ")).unwrap();
        assert!(!environ.is_empty() || std::env::vars_os().next().is_none());
    }
}
