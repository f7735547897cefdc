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

/// A parsed message: (id, is response, rcode, answer count, first question name, qtype).
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub rcode: u8,
    pub answers: u16,
    pub name: String,
    pub qtype: u16,
}

/// Parses a DNS message; `None` when it is not one (or has no question).
pub fn parse(b: &[u8]) -> Option<Message> {
    if b.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([b[0], b[1]]);
    let flags = u16::from_be_bytes([b[2], b[3]]);
    let qd = u16::from_be_bytes([b[4], b[5]]);
    let an = u16::from_be_bytes([b[6], b[7]]);
    if qd == 0 || (flags >> 11) & 0xF != 0 {
        return None; // no question, or not a standard query
    }
    let (name, end) = read_name(b, 12)?;
    let qtype = u16::from_be_bytes([*b.get(end)?, *b.get(end + 1)?]);
    Some(Message {
        id,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0xF) as u8,
        answers: an,
        name,
        qtype,
    })
}

/// A name at `at`, following at most 16 compression pointers; returns the
/// name and the offset after it in the original position.
fn read_name(b: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *b.get(at)? as usize;
        if len == 0 {
            return Some((name, end.unwrap_or(at + 1)));
        }
        if len & 0xC0 == 0xC0 {
            let ptr = ((len & 0x3F) << 8) | *b.get(at + 1)? as usize;
            end.get_or_insert(at + 2);
            jumps += 1;
            if jumps > 16 {
                return None;
            }
            at = ptr;
            continue;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        let label = b.get(at + 1..at + 1 + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        if name.len() + len > 255 {
            return None;
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

impl Dns {
    pub fn datagram(&mut self, payload: &[u8], at: Mark) {
        let Some(m) = parse(payload) else {
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
        if let Some(q) = self
            .queries
            .iter_mut()
            .rev()
            .find(|q| q.id == m.id && q.name == m.name && q.answer.is_none())
        {
            q.answer = Some(Answer {
                rcode: m.rcode,
                count: m.answers,
                at,
            });
        }
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
        assert!(parse(&v).is_none());
        assert!(parse(&[0; 5]).is_none());
    }
}
