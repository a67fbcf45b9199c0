//! In-memory sides for the relay's tests: a daemon that sends scripted bytes and then dies
//! (or resets, or goes quiet), and a client that records what reaches it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::rc::Rc;

use rswsgi_protocol::{Frame, FrameReader, ReadError};
use tracing::Level;

use super::io::{BodyReadError, ClientGone, DaemonLink, Downstream, Header, SharedBytes, Wait};

/// How the scripted daemon's bytes end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The connection closes (the daemon died).
    Close,
    /// The connection is reset.
    Reset,
    /// Nothing more comes: the wait times out.
    Quiet,
    /// The client goes away while the relay waits.
    ClientGone,
}

/// What happened, in order, on both sides of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The relay waited for the daemon, which then sent its next burst.
    Wait,
    /// This many body bytes were passed on to the client in one write.
    Wrote(usize),
}

/// The record both fakes write to.
pub type Timeline = Rc<RefCell<Vec<Mark>>>;

/// The daemon's bytes, in bursts that each arrive only once the relay waits, then the cut.
struct Script {
    /// The burst that has arrived (what is left of it).
    bytes: VecDeque<u8>,
    /// The bursts still to come.
    later: VecDeque<Vec<u8>>,
    cut: Cut,
    timeline: Timeline,
    /// Most bytes one read returns.
    read_size: usize,
}

impl Script {
    /// The next burst arrives, after a wait; false when none is left.
    fn next_burst(&mut self) -> bool {
        let Some(burst) = self.later.pop_front() else {
            return false;
        };
        self.timeline.borrow_mut().push(Mark::Wait);
        self.bytes = burst.into();
        true
    }

    /// Reads what has arrived; `WouldBlock` when nothing has.
    fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.bytes.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.bytes.len()).min(self.read_size);
        for (slot, b) in buf.iter_mut().zip(self.bytes.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.bytes.is_empty() && !self.next_burst() {
            return match self.cut {
                Cut::Reset => Err(io::ErrorKind::ConnectionReset.into()),
                _ => Ok(0),
            };
        }
        self.read_now(buf)
    }
}

/// A daemon connection that answers with scripted frames.
pub struct FakeLink {
    reader: FrameReader<Script>,
    fds: VecDeque<OwnedFd>,
    /// Everything the relay sent.
    pub sent: Vec<u8>,
    /// Sends that succeed before the daemon refuses the rest (`None`: all succeed).
    pub sends_ok: Option<usize>,
    /// How a refused send fails.
    pub send_error: io::ErrorKind,
    /// The response ring, once a `RingSetup` frame brought it.
    pub ring: Option<FakeRing>,
    /// What the daemon puts in the ring for each `BodyRing` frame, in order.
    ring_blocks: Vec<Vec<u8>>,
}

/// The fake's response ring: what was released of it, and when.
#[derive(Debug, Default)]
pub struct FakeRing {
    /// The size its `RingSetup` frame announced.
    pub data_len: u32,
    /// Slices given back, in order (their lengths).
    pub released: Vec<u32>,
}

impl FakeLink {
    /// A daemon that sends `bytes` (with `fds` for its `BodyFile` frames, in order), then `cut`.
    pub fn new(bytes: Vec<u8>, fds: Vec<OwnedFd>, cut: Cut) -> Self {
        Self::bursts(vec![bytes], fds, cut, Timeline::default())
    }

    /// A daemon that sends `bursts`, each once the relay waits for it, then `cut`; waits
    /// are marked on `timeline`.
    pub fn bursts(bursts: Vec<Vec<u8>>, fds: Vec<OwnedFd>, cut: Cut, timeline: Timeline) -> Self {
        let mut later: VecDeque<Vec<u8>> = bursts.into();
        FakeLink {
            reader: FrameReader::new(Script {
                bytes: later.pop_front().unwrap_or_default().into(),
                later,
                cut,
                timeline,
                // A few bytes at a time: frames come in pieces, as they may on a socket.
                read_size: 7,
            }),
            fds: fds.into(),
            sent: Vec::new(),
            sends_ok: None,
            send_error: io::ErrorKind::BrokenPipe,
            ring: None,
            ring_blocks: Vec::new(),
        }
    }

    /// The bytes the daemon writes into the ring for its `BodyRing` frames, one per frame.
    pub fn with_ring_blocks(mut self, blocks: Vec<Vec<u8>>) -> Self {
        self.ring_blocks = blocks;
        self
    }

    /// Bytes released back to the daemon so far.
    pub fn ring_released(&self) -> u64 {
        let ring = self.ring.iter().flat_map(|r| &r.released);
        ring.map(|&n| u64::from(n)).sum()
    }

    /// Reads return up to `n` bytes from now on.
    pub fn set_read_size(&mut self, n: usize) {
        self.reader.get_mut().read_size = n;
    }

    /// Descriptors not taken.
    pub fn fds_left(&self) -> usize {
        self.fds.len()
    }
}

impl DaemonLink for FakeLink {
    fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        if let Some(n) = self.sends_ok.as_mut() {
            if *n == 0 {
                return Err(self.send_error.into());
            }
            *n -= 1;
        }
        for p in parts {
            self.sent.write_all(p)?;
        }
        Ok(())
    }

    fn wait(&mut self) -> Wait {
        if self.reader.has_buffered() || !self.reader.get_ref().bytes.is_empty() {
            return Wait::Daemon;
        }
        let script = self.reader.get_mut();
        if script.next_burst() {
            return Wait::Daemon;
        }
        match script.cut {
            Cut::Quiet => Wait::TimedOut,
            Cut::ClientGone => Wait::ClientGone,
            Cut::Close | Cut::Reset => Wait::Daemon,
        }
    }

    fn frame_ready(&mut self) -> bool {
        self.reader.frame_ready() || {
            self.reader.read_available(Script::read_now);
            self.reader.frame_ready()
        }
    }

    fn read_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        self.reader.read_frame_in_pieces()
    }

    fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }

    fn has_buffered(&self) -> bool {
        let script = self.reader.get_ref();
        self.reader.has_buffered() || !script.bytes.is_empty() || !script.later.is_empty()
    }

    fn attach_ring(&mut self, _fd: OwnedFd, data_len: u32) -> Result<(), String> {
        if self.ring.is_some() {
            return Err("a second ring".into());
        }
        if data_len as usize != rswsgi_protocol::ring::RING_DATA {
            return Err(format!("{data_len} bytes"));
        }
        self.ring = Some(FakeRing {
            data_len,
            released: Vec::new(),
        });
        Ok(())
    }

    fn ring_bytes(&self, _offset: u32, len: u32) -> Result<SharedBytes<'_>, String> {
        let ring = self.ring.as_ref().ok_or("no ring")?;
        let block = self
            .ring_blocks
            .get(ring.released.len())
            .ok_or("no block")?;
        let len = (len as usize).min(block.len());
        Ok(SharedBytes::from(&block[..len]))
    }

    fn release_ring(&mut self, len: u32) {
        if let Some(ring) = self.ring.as_mut() {
            ring.released.push(len);
        }
    }
}

/// What reached the client, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The status was set.
    Status(u16),
    /// A header was added (`Content-Length` as its number in text).
    Header(String, String),
    /// The headers were forgotten.
    Discarded,
    /// The body began.
    Begins,
    /// Body bytes (from a write, or read out of a sent file).
    Body(Vec<u8>),
    /// The response was aborted.
    Abort,
    /// The client connection was dropped.
    DropClient,
}

/// A client that records the response, and sends a scripted request body.
#[derive(Default)]
pub struct FakeClient {
    /// What reached the client.
    pub events: Vec<Event>,
    /// Log lines.
    pub logs: Vec<(Level, String)>,
    /// A HEAD request.
    pub header_only: bool,
    /// The request body, read out in order.
    pub body: VecDeque<u8>,
    /// How reading past the body fails (`None`: the body simply ends).
    pub body_error: Option<BodyReadError>,
    /// Writes that succeed before the client goes away (`None`: all succeed).
    pub writes_ok: Option<usize>,
    /// Where writes are marked.
    pub timeline: Timeline,
}

impl FakeClient {
    /// All body bytes that reached the client.
    pub fn body_sent(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for e in &self.events {
            if let Event::Body(b) = e {
                all.extend_from_slice(b);
            }
        }
        all
    }

    /// Whether the client saw `event`.
    pub fn saw(&self, event: &Event) -> bool {
        self.events.contains(event)
    }

    fn pass(&mut self, data: Vec<u8>) -> Result<(), ClientGone> {
        if let Some(n) = self.writes_ok.as_mut() {
            if *n == 0 {
                return Err(ClientGone);
            }
            *n -= 1;
        }
        self.timeline.borrow_mut().push(Mark::Wrote(data.len()));
        self.events.push(Event::Body(data));
        Ok(())
    }
}

impl Downstream for FakeClient {
    fn header_only(&self) -> bool {
        self.header_only
    }
    fn set_status(&mut self, status: u16, _reason: &[u8]) {
        self.events.push(Event::Status(status));
    }
    fn add_header(&mut self, header: Header<'_>) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (name, value) = match header {
            Header::ContentType(v) => ("Content-Type".into(), text(v)),
            Header::ContentLength(n) => ("Content-Length".into(), n.to_string()),
            Header::Other(n, v) => (text(n), text(v)),
        };
        self.events.push(Event::Header(name, value));
    }
    fn discard_head(&mut self) {
        self.events.push(Event::Discarded);
    }
    fn response_begins(&mut self) {
        self.events.push(Event::Begins);
    }
    fn write(&mut self, data: &[u8]) -> Result<(), ClientGone> {
        self.pass(data.to_vec())
    }
    fn write_shared(&mut self, data: SharedBytes<'_>) -> Result<(), ClientGone> {
        self.pass(data.to_vec())
    }
    fn send_file(&mut self, fd: OwnedFd, offset: u64, len: u64, _: bool) -> Result<(), ClientGone> {
        use std::os::unix::fs::FileExt;
        let mut data = vec![0; len as usize];
        std::fs::File::from(fd)
            .read_exact_at(&mut data, offset)
            .expect("the relay checked the file holds the block");
        self.pass(data)
    }
    fn read_body(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<Option<usize>, BodyReadError> {
        if self.body.is_empty() {
            return self.body_error.clone().map_or(Ok(None), Err);
        }
        let n = max.min(self.body.len());
        buf.extend(self.body.drain(..n));
        Ok(Some(n))
    }
    fn abort(&mut self) {
        self.events.push(Event::Abort);
    }
    fn drop_client(&mut self) {
        self.events.push(Event::DropClient);
    }
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_owned()));
    }
}
