//! HTTP/1.1 on the wire for the mock: one request per connection, read by hand; responses
//! with a length, file bodies streamed in chunks (cut short or corrupted on demand).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;

use crate::state::{Source, State};

pub(crate) struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter's (decoded) value.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

pub(crate) enum Body {
    Empty,
    Bytes(Vec<u8>),
    File {
        key: (String, String),
        source: Source,
        start: u64,
        len: u64,
        corrupt: bool,
        cut: Option<u64>,
    },
}

pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn json(self, body: String) -> Response {
        let mut response = self.header("Content-Type", "application/json");
        response.body = Body::Bytes(body.into_bytes());
        response
    }

    /// An error the way the Hub sends them: `X-Error-Code`, `X-Error-Message`, a JSON body.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        Response::new(status)
            .header("X-Error-Code", code)
            .header("X-Error-Message", message)
            .json(format!("{{\"error\":{}}}", json_string(message)))
    }
}

pub(crate) fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Some(Request {
        method,
        target,
        headers,
    })
}

pub(crate) fn write_response(
    mut stream: TcpStream,
    state: &Mutex<State>,
    response: Response,
    head_only: bool,
) -> std::io::Result<()> {
    let length = match &response.body {
        Body::Empty => 0,
        Body::Bytes(bytes) => bytes.len() as u64,
        Body::File { len, .. } => *len,
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ));
    stream.write_all(head.as_bytes())?;
    if head_only {
        return stream.flush();
    }
    match response.body {
        Body::Empty => {}
        Body::Bytes(bytes) => stream.write_all(&bytes)?,
        Body::File {
            key,
            source,
            start,
            len,
            corrupt,
            cut,
        } => {
            let limit = cut.map_or(len, |c| c.min(len));
            send_file(&mut stream, state, &key, &source, start, limit, corrupt)?;
            if cut.is_some() {
                stream.flush()?;
                return stream.shutdown(Shutdown::Both);
            }
        }
    }
    stream.flush()
}

fn send_file(
    stream: &mut TcpStream,
    state: &Mutex<State>,
    key: &(String, String),
    source: &Source,
    start: u64,
    len: u64,
    corrupt: bool,
) -> std::io::Result<()> {
    let mut reader: Box<dyn Read> = match source {
        Source::Memory(bytes) => {
            let from = start as usize;
            let to = (start + len) as usize;
            Box::new(std::io::Cursor::new(bytes[from..to].to_vec()))
        }
        Source::Disk(path) => {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(start))?;
            Box::new(file.take(len))
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = reader.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if corrupt {
            buf[..n].iter_mut().for_each(|b| *b ^= 0xff);
        }
        // Counted before the write so a client that has read everything sees the total.
        add_served(state, key, n as i64);
        if let Err(e) = stream.write_all(&buf[..n]) {
            add_served(state, key, -(n as i64));
            return Err(e);
        }
        left -= n as u64;
    }
    Ok(())
}

fn add_served(state: &Mutex<State>, key: &(String, String), n: i64) {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let served = state.served.entry(key.clone()).or_insert(0);
    *served = served.saturating_add_signed(n);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Other",
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive (start, end); `Ok(None)` for a header we
/// ignore (serve everything), `Err` when the start is past the end.
pub(crate) fn parse_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((from, to)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (from, to) = (from.trim(), to.trim());
    if from.is_empty() {
        let Ok(n) = to.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || size == 0 {
            return Err(());
        }
        return Ok(Some((size.saturating_sub(n), size - 1)));
    }
    let Ok(start) = from.parse::<u64>() else {
        return Ok(None);
    };
    if start >= size {
        return Err(());
    }
    let end = match to.parse::<u64>() {
        Ok(end) if end >= start => end.min(size - 1),
        Ok(_) => return Ok(None),
        Err(_) if to.is_empty() => size - 1,
        Err(_) => return Ok(None),
    };
    Ok(Some((start, end)))
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything but RFC 3986's unreserved characters, `/` included.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A repo path with each segment encoded and the `/`s kept.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
