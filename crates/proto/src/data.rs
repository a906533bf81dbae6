//! The DATA reader. RFC 5321 §4.1.1.4: the message ends at CRLF.CRLF and nowhere else. Every
//! line must end in CRLF; a bare LF or bare CR anywhere is recorded and the whole transaction is
//! refused with `550 5.6.0` once the real end arrives — so `\n.\n`, `\r.\r`, `\n.\r\n` and
//! friends can never end a message early or smuggle a second one (SPEC §2.1). Dot-stuffing is
//! undone; a size cap stops buffering (the rest is read and discarded, then `552 5.3.4`).

/// Why a received message cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataError {
    BareCrOrLf,
    TooBig,
}

#[derive(Debug)]
pub struct DataReader {
    body: Vec<u8>,
    max_size: usize,
    /// Position within the line: true right after a CRLF (or at the start).
    at_line_start: bool,
    /// We saw `.` at a line start and are deciding between stuffing and the end marker.
    dot_at_start: bool,
    /// Last byte was CR (waiting for its LF).
    pending_cr: bool,
    /// `.` + CR at line start: the end, if LF follows.
    dot_cr: bool,
    error: Option<DataError>,
    total: usize,
}

/// What one call to [`DataReader::ingest`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum DataProgress {
    /// Need more bytes.
    More,
    /// The end marker was read; `usize` bytes of the input were consumed.
    Done(usize),
}

impl DataReader {
    pub fn new(max_size: usize) -> DataReader {
        DataReader {
            body: Vec::with_capacity(8192),
            max_size,
            at_line_start: true,
            dot_at_start: false,
            pending_cr: false,
            dot_cr: false,
            error: None,
            total: 0,
        }
    }

    fn push(&mut self, b: u8) {
        self.total += 1;
        if self.error.is_some() {
            return;
        }
        if self.body.len() >= self.max_size {
            self.error = Some(DataError::TooBig);
            self.body = Vec::new();
            return;
        }
        self.body.push(b);
    }

    fn flag(&mut self, e: DataError) {
        if self.error.is_none() {
            self.error = Some(e);
            self.body = Vec::new();
        }
    }

    /// Feed bytes; returns `Done(consumed)` when CRLF.CRLF was read. Bytes after it belong to the
    /// next command (pipelining) and are left to the caller.
    pub fn ingest(&mut self, input: &[u8]) -> DataProgress {
        for (i, &b) in input.iter().enumerate() {
            if self.dot_cr {
                self.dot_cr = false;
                if b == b'\n' {
                    return DataProgress::Done(i + 1);
                }
                // ".\r" then not LF: a bare CR after a stuffed dot.
                self.flag(DataError::BareCrOrLf);
                self.push(b'\r');
                self.at_line_start = false;
            }
            if self.dot_at_start {
                self.dot_at_start = false;
                if b == b'\r' {
                    self.dot_cr = true;
                    continue;
                }
                // Dot-stuffed line: the leading dot was dropped, keep the rest.
            }
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.push(b'\r');
                    self.push(b'\n');
                    self.at_line_start = true;
                    continue;
                }
                self.flag(DataError::BareCrOrLf);
                self.push(b'\r');
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    self.flag(DataError::BareCrOrLf);
                    self.push(b'\n');
                    // Do not treat a bare LF as a line start: "\n.\n" is not an end marker.
                    self.at_line_start = false;
                }
                b'.' if self.at_line_start => {
                    self.at_line_start = false;
                    self.dot_at_start = true;
                }
                _ => {
                    self.at_line_start = false;
                    self.push(b);
                }
            }
        }
        DataProgress::More
    }

    /// Bytes seen so far (after unstuffing), including discarded ones.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The message, or why it is refused. Call after `Done`.
    pub fn finish(self) -> Result<Vec<u8>, DataError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], max: usize) -> (Result<Vec<u8>, DataError>, Option<usize>) {
        let mut r = DataReader::new(max);
        match r.ingest(input) {
            DataProgress::Done(n) => (r.finish(), Some(n)),
            DataProgress::More => (Err(DataError::TooBig), None),
        }
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        let (body, n) = read(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", 1000);
        assert_eq!(body.unwrap(), b"Subject: x\r\n\r\nhello\r\n");
        assert_eq!(n, Some(24));
    }

    #[test]
    fn empty_message() {
        let (body, _) = read(b".\r\n", 1000);
        assert_eq!(body.unwrap(), b"");
    }

    #[test]
    fn dot_unstuffing() {
        let (body, _) = read(b"..hidden\r\n...\r\n.\r\n", 1000);
        assert_eq!(body.unwrap(), b".hidden\r\n..\r\n");
    }

    #[test]
    fn smuggling_variants_never_end_the_message_and_are_refused() {
        for evil in [
            &b"a\r\n\n.\nMAIL FROM:<x@y>\r\n.\r\n"[..],
            b"a\r\n\r.\rMAIL FROM:<x@y>\r\n.\r\n",
            b"a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n",
            b"a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n",
            b"a\r\n.\r\rMAIL FROM:<x@y>\r\n.\r\n",
            b"bare\ncontinues\r\n.\r\n",
            b"bare\rcr\r\n.\r\n",
        ] {
            let mut r = DataReader::new(1000);
            let p = r.ingest(evil);
            assert_eq!(
                p,
                DataProgress::Done(evil.len()),
                "{:?}",
                String::from_utf8_lossy(evil)
            );
            assert_eq!(
                r.finish(),
                Err(DataError::BareCrOrLf),
                "{:?}",
                String::from_utf8_lossy(evil)
            );
        }
    }

    #[test]
    fn split_anywhere_gives_the_same_result() {
        let msg = b"Subject: s\r\n\r\n..x\r\nline\r\n.\r\n";
        for cut in 0..msg.len() {
            let mut r = DataReader::new(1000);
            let first = r.ingest(&msg[..cut]);
            let done = match first {
                DataProgress::Done(n) => n,
                DataProgress::More => match r.ingest(&msg[cut..]) {
                    DataProgress::Done(n) => cut + n,
                    DataProgress::More => panic!("no end at cut {cut}"),
                },
            };
            assert_eq!(done, msg.len());
            assert_eq!(r.finish().unwrap(), b"Subject: s\r\n\r\n.x\r\nline\r\n");
        }
    }

    #[test]
    fn size_cap_reads_to_the_end_then_refuses() {
        let mut big = vec![b'a'; 5000];
        big.extend_from_slice(b"\r\n.\r\n");
        let (body, n) = read(&big, 100);
        assert_eq!(body, Err(DataError::TooBig));
        assert_eq!(n, Some(big.len()));
    }
}
