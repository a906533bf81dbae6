//! The DATA reader. RFC 5321 §4.1.1.4: the message ends at CRLF.CRLF and nowhere else. Every
//! line must end in CRLF; a bare LF, a bare CR or a NUL byte anywhere is recorded and the whole
//! transaction is refused with `550 5.6.0` once the real end arrives (SPEC §9). Dot-stuffing is
//! undone; a size cap stops buffering (the rest is read and discarded, then `552 5.3.4`).
//!
//! SMTP smuggling works by finding a byte sequence that this reader and some other MTA disagree
//! on as "the end". So the reader is one explicit state machine whose only path to
//! [`DataProgress::Done`] is `LineStart --'.'--> Dot --CR--> DotCr --LF--> end`, and `LineStart`
//! is entered only after a real CRLF (or at the start of DATA). A bare CR is resolved by the very
//! next byte, which is then read *mid-line*: so `CRLF CR . CRLF`, `CRLF CR CR . CRLF` and the
//! NUL variants can never reach `Dot`. `fuzz/fuzz_targets/data_reader.rs` checks this against an
//! oracle; the unit tests below list every published end-of-data variant.

/// Why a received message cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataError {
    /// A CR not followed by LF, or an LF not preceded by CR.
    BareCrOrLf,
    /// A NUL byte: no legitimate message has one, and downstream MTAs disagree on it.
    Nul,
    TooBig,
}

/// Where the reader stands within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// Right after a real CRLF, or at the start of DATA.
    LineStart,
    /// Inside a line.
    Mid,
    /// A CR inside or at the start of a line, waiting for its LF.
    Cr,
    /// A `.` at line start: stuffing or the end marker.
    Dot,
    /// `.` CR at line start: the end marker if LF follows.
    DotCr,
}

#[derive(Debug)]
pub struct DataReader {
    body: Vec<u8>,
    max_size: usize,
    pos: Pos,
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
            pos: Pos::LineStart,
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

    /// One byte read inside a line (never at line start): the only place plain bytes go.
    fn mid_line(&mut self, b: u8) {
        match b {
            b'\r' => self.pos = Pos::Cr,
            b'\n' => {
                self.flag(DataError::BareCrOrLf);
                self.push(b);
                self.pos = Pos::Mid;
            }
            0 => {
                self.flag(DataError::Nul);
                self.pos = Pos::Mid;
            }
            _ => {
                self.push(b);
                self.pos = Pos::Mid;
            }
        }
    }

    /// A CR that turned out bare: refuse, keep the byte, and read what follows as mid-line.
    fn bare_cr_then(&mut self, b: u8) {
        self.flag(DataError::BareCrOrLf);
        self.push(b'\r');
        self.mid_line(b);
    }

    /// Feed bytes; returns `Done(consumed)` when CRLF.CRLF was read. Bytes after it belong to the
    /// next command (pipelining) and are left to the caller.
    pub fn ingest(&mut self, input: &[u8]) -> DataProgress {
        for (i, &b) in input.iter().enumerate() {
            match self.pos {
                Pos::LineStart if b == b'.' => self.pos = Pos::Dot,
                Pos::LineStart | Pos::Mid => self.mid_line(b),
                Pos::Cr if b == b'\n' => {
                    self.push(b'\r');
                    self.push(b'\n');
                    self.pos = Pos::LineStart;
                }
                Pos::Cr => self.bare_cr_then(b),
                Pos::Dot if b == b'\r' => self.pos = Pos::DotCr,
                // Dot-stuffed line: the leading dot is dropped, the rest is mid-line.
                Pos::Dot => self.mid_line(b),
                Pos::DotCr if b == b'\n' => return DataProgress::Done(i + 1),
                Pos::DotCr => self.bare_cr_then(b),
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

    /// Where the message must end: right after the first CRLF.CRLF, counting the CRLF that ended
    /// the DATA command as the one before the first line. The reader must agree for any input.
    pub(crate) fn oracle_end(input: &[u8]) -> Option<usize> {
        let mut framed = b"\r\n".to_vec();
        framed.extend_from_slice(input);
        framed
            .windows(5)
            .position(|w| w == b"\r\n.\r\n")
            .map(|p| p + 5 - 2)
    }

    /// The end-of-data variants the public smuggling scanners try (hannob's smtpsmug, The-Login's
    /// SMTP-Smuggling-Tools and the SEC Consult write-up), plus every combination of the
    /// separators they are built from.
    fn published_variants() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = [
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r.\r",
            b"\r.\r\n",
            b"\r\n.\r",
            b"\r\n\r.\r\n",
            b"\r\n\r\r.\r\n",
            b"\r\n.\n",
            b"\r\n\x00.\r\n",
            b"\r\n.\x00\r\n",
            b"\n.\r",
            b"\r.\n",
            b"\r\n.\r\r\n",
            b"\r\r\n.\r\r\n",
            b"\n\n.\n\n",
            b"\r\n\n.\r\n",
            b"\r\n.\n\r\n",
            b"\r\n.\r\x00\n",
        ]
        .iter()
        .map(|x| x.to_vec())
        .collect();
        let before: [&[u8]; 9] = [
            b"\n",
            b"\r",
            b"\r\r",
            b"\n\r",
            b"\r\n\r",
            b"\r\n\n",
            b"\r\n\x00",
            b"\x00",
            b"",
        ];
        let after: [&[u8]; 8] = [
            b"\n",
            b"\r",
            b"\r\r\n",
            b"\n\r",
            b"\x00\r\n",
            b"\r\x00\n",
            b"\r\n\r",
            b"",
        ];
        for b in before {
            for a in after {
                if b.is_empty() && a.is_empty() {
                    continue; // a plain dot inside a line
                }
                v.push([b, &b"."[..], a].concat());
            }
        }
        v
    }

    #[test]
    fn every_published_variant_is_refused_and_never_ends_early() {
        for evil in published_variants() {
            let input = [
                &b"Subject: s\r\n\r\nhello"[..],
                &evil,
                b"MAIL FROM:<ceo@tenant.example>\r\nRCPT TO:<victim@dest.example>\r\nDATA\r\n",
                b"Subject: smuggled\r\n\r\nx\r\n.\r\n",
            ]
            .concat();
            let show = String::from_utf8_lossy(&evil).escape_debug().to_string();
            let mut r = DataReader::new(1 << 20);
            let p = r.ingest(&input);
            assert_eq!(p, DataProgress::Done(input.len()), "{show}");
            assert_eq!(oracle_end(&input), Some(input.len()), "{show}");
            assert!(r.finish().is_err(), "{show} must be refused");
        }
    }

    #[test]
    fn crlf_cr_dot_crlf_is_not_an_end() {
        // The variant that once let a second transaction through: CR after a real CRLF, then
        // `.` CRLF. The dot is data; the real end comes later and the message is refused.
        let input = b"a\r\n\r.\r\nMAIL FROM:<x@y>\r\n.\r\n";
        let (body, n) = read(input, 1000);
        assert_eq!(n, Some(input.len()));
        assert_eq!(body, Err(DataError::BareCrOrLf));
    }

    #[test]
    fn nul_anywhere_is_refused() {
        for input in [
            &b"a\x00b\r\n.\r\n"[..],
            b"\x00\r\n.\r\n",
            b"a\r\n\x00.\r\n.\r\n",
            b"a\r\n.\x00\r\n.\r\n",
        ] {
            let (body, n) = read(input, 1000);
            assert_eq!(n, Some(input.len()));
            assert_eq!(body, Err(DataError::Nul), "{input:?}");
        }
    }

    #[test]
    fn a_bare_cr_before_a_real_crlf_still_ends_there() {
        // CR CR LF: the first CR is bare, the CRLF after it is real, so `.` CRLF ends DATA here
        // (as in every other MTA) and the whole message is refused.
        let input = b"a\r\r\n.\r\nNOOP\r\n";
        let (body, n) = read(input, 1000);
        assert_eq!(n, Some(7));
        assert_eq!(oracle_end(input), Some(7));
        assert_eq!(body, Err(DataError::BareCrOrLf));
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
