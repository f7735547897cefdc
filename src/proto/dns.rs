//! DNS messages over UDP (RFC 1035 4.1): the header and the first
//! question, enough to pair queries with answers and read the outcome.
//! Written here: the few fields needed do not justify a DNS crate, and the
//! name decoder must bound compression pointers on hostile input.

use crate::capture::Mark;

/// One query and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// Lower case, without the trailing dot.
    pub name: String,
    pub qtype: u16,
    pub at: Mark,
    pub answer: Option<Answer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u8,
    /// Answer records.
    pub count: u16,
    pub at: Mark,
}

/// A parsed message: id, whether it is a response, rcode, answer count,
/// the first question's name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub rcode: u8,
    pub answers: u16,
    pub name: String,
    pub qtype: u16,
}

/// Byte layout of the header (RFC 1035 §4.1.1), big-endian.
pub mod field {
    use std::ops::Range;
    pub const ID: Range<usize> = 0..2;
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const HEADER_LEN: usize = 12;
    /// The first question's name starts right after the header.
    pub const QUESTION: usize = 12;
}

use super::error::{bad, Error, Layer};

fn be16(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

/// Parses a DNS message up to its first question's type: need-more when
/// cut short, malformed for a message that is no standard query with a
/// question, or a bad name.
pub fn parse(b: &[u8]) -> Result<Message, Error> {
    if b.len() < field::HEADER_LEN {
        return Err(Error::need_more(Layer::Dns, field::HEADER_LEN));
    }
    let flags = be16(b, field::FLAGS);
    if be16(b, field::QDCOUNT) == 0 {
        return bad(Layer::Dns, field::QDCOUNT.start, "no question");
    }
    if (flags >> 11) & 0xF != 0 {
        return bad(
            Layer::Dns,
            field::FLAGS.start,
            format!("opcode {} is not a standard query", (flags >> 11) & 0xF),
        );
    }
    let (name, end) = read_name(b, field::QUESTION)?;
    let Some(t) = b.get(end..end + 2) else {
        return Err(Error::need_more(Layer::Dns, end + 2));
    };
    Ok(Message {
        id: be16(b, field::ID),
        response: flags & 0x8000 != 0,
        rcode: (flags & 0xF) as u8,
        answers: be16(b, field::ANCOUNT),
        name,
        qtype: u16::from_be_bytes([t[0], t[1]]),
    })
}

/// A name at `at`, following at most 16 compression pointers; returns the
/// name and the offset after it in the original position.
fn read_name(b: &[u8], mut at: usize) -> Result<(String, usize), Error> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    let short = |n: usize| Error::need_more(Layer::Dns, n);
    loop {
        let len = *b.get(at).ok_or_else(|| short(at + 1))? as usize;
        if len == 0 {
            return Ok((name, end.unwrap_or(at + 1)));
        }
        if len & 0xC0 == 0xC0 {
            let ptr = ((len & 0x3F) << 8) | *b.get(at + 1).ok_or_else(|| short(at + 2))? as usize;
            end.get_or_insert(at + 2);
            jumps += 1;
            if jumps > 16 {
                return bad(Layer::Dns, at, "more than 16 compression pointers");
            }
            at = ptr;
            continue;
        }
        if len & 0xC0 != 0 {
            return bad(Layer::Dns, at, format!("label length byte 0x{len:02x}"));
        }
        let label = b
            .get(at + 1..at + 1 + len)
            .ok_or_else(|| short(at + 1 + len))?;
        if !name.is_empty() {
            name.push('.');
        }
        if name.len() + len > 255 {
            return bad(Layer::Dns, at, "name longer than 255 bytes");
        }
        name.extend(label.iter().map(|c| c.to_ascii_lowercase() as char));
        at += 1 + len;
    }
}

/// Queries of one flow, paired with their responses by id and name.
#[derive(Debug, Clone, Default)]
pub struct Dns {
    pub queries: Vec<Query>,
    /// Queries not kept because of [`MAX_QUERIES`].
    pub dropped: u32,
}

/// Queries remembered per flow.
pub const MAX_QUERIES: usize = 256;

/// An answer this long after its query is not its answer (Windows' resolver
/// gives up after about 10 s): a query is final once answered or this old,
/// which lets a live DNS flow hand its lookups over as the capture is read.
pub const ANSWER_NS: i64 = 15_000_000_000;

impl Dns {
    pub fn datagram(&mut self, payload: &[u8], at: Mark) {
        let Ok(m) = parse(payload) else {
            return;
        };
        if !m.response {
            if self.queries.len() < MAX_QUERIES {
                self.queries.push(Query {
                    id: m.id,
                    name: m.name,
                    qtype: m.qtype,
                    at,
                    answer: None,
                });
            } else {
                self.dropped += 1;
            }
            return;
        }
        if let Some(q) = self.queries.iter_mut().rev().find(|q| {
            q.id == m.id
                && q.name == m.name
                && q.answer.is_none()
                && at.ts.saturating_sub(q.at.ts) <= ANSWER_NS
        }) {
            q.answer = Some(Answer {
                rcode: m.rcode,
                count: m.answers,
                at,
            });
        }
    }
}

impl Dns {
    /// Takes the queries nothing later can change (answered, or older than
    /// [`ANSWER_NS`] at capture time `now`), in order.
    pub fn take_final(&mut self, now: i64) -> Vec<Query> {
        let (done, open): (Vec<Query>, Vec<Query>) = std::mem::take(&mut self.queries)
            .into_iter()
            .partition(|q| q.answer.is_some() || now.saturating_sub(q.at.ts) > ANSWER_NS);
        self.queries = open;
        done
    }
}

pub fn rcode_name(r: u8) -> String {
    match r {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        r => format!("RCODE{r}"),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn msg(id: u16, flags: u16, an: u16, name: &str) -> Vec<u8> {
        let mut v = id.to_be_bytes().to_vec();
        v.extend(flags.to_be_bytes());
        v.extend([0, 1]);
        v.extend(an.to_be_bytes());
        v.extend([0, 0, 0, 0]);
        for l in name.split('.') {
            v.push(l.len() as u8);
            v.extend(l.as_bytes());
        }
        v.extend([0, 0, 1, 0, 1]);
        v
    }

    #[test]
    fn query_then_nxdomain() {
        let mut d = Dns::default();
        let m = |f| Mark { frame: f, ts: 0 };
        d.datagram(&msg(7, 0x0100, 0, "RDP.Example.test"), m(1));
        d.datagram(&msg(7, 0x8183, 0, "rdp.example.test"), m(2));
        assert_eq!(d.queries[0].name, "rdp.example.test");
        assert_eq!(d.queries[0].answer.unwrap().rcode, 3);
        assert_eq!(rcode_name(3), "NXDOMAIN");
    }

    #[test]
    fn compression_loops_and_garbage_are_refused() {
        let mut v = msg(1, 0x0100, 0, "a");
        // Question name = pointer to itself.
        v.truncate(12);
        v.extend([0xC0, 12, 0, 1, 0, 1]);
        let e = parse(&v).unwrap_err();
        assert_eq!(
            (e.layer, e.offset, e.is_need_more()),
            (Layer::Dns, 12, false)
        );
        assert!(parse(&[0; 5]).unwrap_err().is_need_more());
    }

    #[test]
    fn one_byte_short_and_one_byte_changed() {
        let v = msg(7, 0x0100, 0, "rdp.example.test");
        assert_eq!(parse(&v).unwrap().name, "rdp.example.test");
        // Cut anywhere: need-more, never a panic.
        for n in 0..v.len() - 2 {
            assert!(parse(&v[..n]).unwrap_err().is_need_more(), "prefix {n}");
        }
        // An opcode other than QUERY names the flags.
        let mut c = v.clone();
        c[2] |= 0x28;
        assert_eq!(parse(&c).unwrap_err().offset, field::FLAGS.start);
        // A label length with the reserved bits 01.
        let mut c = v.clone();
        c[12] = 0x43;
        let e = parse(&c).unwrap_err();
        assert_eq!((e.offset, e.is_need_more()), (12, false));
        // No question.
        let mut c = v;
        c[5] = 0;
        assert_eq!(parse(&c).unwrap_err().offset, field::QDCOUNT.start);
    }
}
