//! A fake GitHub Actions cache service on 127.0.0.1, speaking what OpenDAL's
//! `ghac` service speaks (cache service v2): the Twirp calls
//! `CreateCacheEntry`, `FinalizeCacheEntryUpload` and
//! `GetCacheEntryDownloadURL` (protobuf bodies), and the Azure Blob Storage
//! calls on the signed URLs they return (Put Blob, Put Block, Put Block
//! List, ranged Get Blob). Entries are immutable per key and version, as on
//! GitHub. Faults are switched on while it runs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ghac::v1 as api;
use prost::Message;

const TWIRP: &str = "/twirp/github.actions.results.api.v1.CacheService/";

/// What the service does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// Every Twirp call answers 429.
    RateLimited,
    /// Every Twirp call answers 500.
    ServerError,
    /// Download URLs have expired: the blob answers 403.
    ExpiredDownload,
    /// Blob requests are read and never answered.
    HangingBlob,
}

#[derive(Default)]
struct State {
    /// Committed entries: (key, version) → blob id.
    entries: HashMap<(String, String), u64>,
    /// Reserved, not yet finalized: (key, version) → blob id.
    reserved: HashMap<(String, String), u64>,
    /// Blob contents by id.
    blobs: HashMap<u64, Vec<u8>>,
    /// Uncommitted blocks by blob id.
    blocks: HashMap<u64, HashMap<String, Vec<u8>>>,
    next_id: u64,
    /// Every request line served, for tests to count calls.
    log: Vec<String>,
    /// Every Authorization header seen on Twirp calls.
    tokens: Vec<String>,
}

/// A running fake service.
pub struct FakeGhac {
    pub port: u16,
    state: Arc<Mutex<State>>,
    fault: Arc<Mutex<Fault>>,
}

impl FakeGhac {
    pub fn start() -> FakeGhac {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let fault = Arc::new(Mutex::new(Fault::None));
        let (s, f) = (state.clone(), fault.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, f) = (s.clone(), f.clone());
                thread::spawn(move || serve(stream, port, &s, &f));
            }
        });
        FakeGhac { port, state, fault }
    }

    /// The variables a workflow step gets from the runner (with the
    /// runtime token exposed).
    pub fn env(&self, token: &str) -> Vec<(String, String)> {
        vec![
            (
                "ACTIONS_RESULTS_URL".into(),
                format!("http://127.0.0.1:{}/", self.port),
            ),
            ("ACTIONS_CACHE_SERVICE_V2".into(), "true".into()),
            ("ACTIONS_RUNTIME_TOKEN".into(), token.into()),
        ]
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// How many requests named `call` (a Twirp method, or `PUT`/`GET` for
    /// blobs) were served.
    pub fn calls(&self, call: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.log.iter().filter(|l| l.contains(call)).count()
    }

    /// The committed entries' keys.
    pub fn keys(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let mut keys: Vec<String> = state.entries.keys().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys
    }

    /// The tokens Twirp calls came with.
    pub fn tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().tokens.clone()
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn respond(mut stream: TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn twirp_error(stream: TcpStream, status: &str, code: &str, msg: &str) {
    let body = format!(r#"{{"code":"{code}","msg":"{msg}"}}"#);
    respond(
        stream,
        status,
        &[("Content-Type", "application/json".to_owned())],
        body.as_bytes(),
    );
}

fn protobuf(stream: TcpStream, message: &impl Message) {
    respond(
        stream,
        "200 OK",
        &[("Content-Type", "application/protobuf".to_owned())],
        &message.encode_to_vec(),
    );
}

fn serve(stream: TcpStream, port: u16, state: &Mutex<State>, fault: &Mutex<Fault>) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let fault = *fault.lock().unwrap();
    let call = request
        .path
        .strip_prefix(TWIRP)
        .map(str::to_owned)
        .unwrap_or_else(|| request.method.clone());
    state.lock().unwrap().log.push(call.clone());
    if request.path.starts_with(TWIRP) {
        match fault {
            Fault::RateLimited => {
                return twirp_error(
                    stream,
                    "429 Too Many Requests",
                    "resource_exhausted",
                    "slow down",
                );
            }
            Fault::ServerError => {
                return twirp_error(stream, "500 Internal Server Error", "internal", "broken");
            }
            _ => {}
        }
        let token = request.header("authorization").unwrap_or("").to_owned();
        state.lock().unwrap().tokens.push(token.clone());
        if !token.starts_with("Bearer ") || token.len() <= 7 {
            return twirp_error(stream, "401 Unauthorized", "unauthenticated", "no token");
        }
        return twirp(stream, port, &call, &request.body, state);
    }
    if fault == Fault::HangingBlob {
        // Hold the connection, answer nothing.
        thread::sleep(Duration::from_secs(600));
        return;
    }
    let Some(id) = request
        .path
        .strip_prefix("/blobs/")
        .and_then(|id| id.parse::<u64>().ok())
    else {
        return respond(stream, "404 Not Found", &[], b"");
    };
    blob(stream, id, &request, fault, state);
}

fn twirp(stream: TcpStream, port: u16, call: &str, body: &[u8], state: &Mutex<State>) {
    let mut state = state.lock().unwrap();
    match call {
        "CreateCacheEntry" => {
            let Ok(req) = api::CreateCacheEntryRequest::decode(body) else {
                return twirp_error(stream, "400 Bad Request", "malformed", "bad body");
            };
            let entry = (req.key, req.version);
            if state.entries.contains_key(&entry) || state.reserved.contains_key(&entry) {
                drop(state);
                return twirp_error(
                    stream,
                    "409 Conflict",
                    "already_exists",
                    "cache entry with the same key, version, and scope already exists",
                );
            }
            state.next_id += 1;
            let id = state.next_id;
            state.reserved.insert(entry, id);
            drop(state);
            protobuf(
                stream,
                &api::CreateCacheEntryResponse {
                    ok: true,
                    signed_upload_url: format!(
                        "http://127.0.0.1:{port}/blobs/{id}?sig=upload-{id}&se=later"
                    ),
                },
            );
        }
        "FinalizeCacheEntryUpload" => {
            let Ok(req) = api::FinalizeCacheEntryUploadRequest::decode(body) else {
                return twirp_error(stream, "400 Bad Request", "malformed", "bad body");
            };
            let entry = (req.key, req.version);
            let Some(id) = state.reserved.remove(&entry) else {
                drop(state);
                return twirp_error(stream, "404 Not Found", "not_found", "no such upload");
            };
            let size = state.blobs.get(&id).map_or(0, Vec::len);
            if size as i64 != req.size_bytes {
                drop(state);
                return twirp_error(stream, "400 Bad Request", "invalid_argument", "size");
            }
            state.entries.insert(entry, id);
            drop(state);
            protobuf(
                stream,
                &api::FinalizeCacheEntryUploadResponse {
                    ok: true,
                    entry_id: id as i64,
                },
            );
        }
        "GetCacheEntryDownloadURL" => {
            let Ok(req) = api::GetCacheEntryDownloadUrlRequest::decode(body) else {
                return twirp_error(stream, "400 Bad Request", "malformed", "bad body");
            };
            let found = state.entries.get(&(req.key.clone(), req.version)).copied();
            drop(state);
            protobuf(
                stream,
                &api::GetCacheEntryDownloadUrlResponse {
                    ok: found.is_some(),
                    signed_download_url: found.map_or_else(String::new, |id| {
                        format!("http://127.0.0.1:{port}/blobs/{id}?sig=download-{id}&se=later")
                    }),
                    matched_key: if found.is_some() {
                        req.key
                    } else {
                        String::new()
                    },
                },
            );
        }
        _ => {
            drop(state);
            twirp_error(stream, "404 Not Found", "bad_route", "no such method");
        }
    }
}

fn blob(stream: TcpStream, id: u64, request: &Request, fault: Fault, state: &Mutex<State>) {
    let mut state = state.lock().unwrap();
    match request.method.as_str() {
        "PUT" => {
            if !request.query.contains(&format!("sig=upload-{id}")) {
                drop(state);
                return respond(stream, "403 Forbidden", &[], b"AuthenticationFailed");
            }
            match request.query("comp") {
                Some("block") => {
                    let block = request.query("blockid").unwrap_or("").to_owned();
                    state
                        .blocks
                        .entry(id)
                        .or_default()
                        .insert(block, request.body.clone());
                }
                Some("blocklist") => {
                    let list = String::from_utf8_lossy(&request.body).into_owned();
                    let blocks = state.blocks.remove(&id).unwrap_or_default();
                    let mut data = Vec::new();
                    for part in list.split("<Latest>").skip(1) {
                        let block = part.split("</Latest>").next().unwrap_or("");
                        data.extend_from_slice(blocks.get(block).map_or(&[][..], Vec::as_slice));
                    }
                    state.blobs.insert(id, data);
                }
                _ => {
                    state.blobs.insert(id, request.body.clone());
                }
            }
            drop(state);
            respond(stream, "201 Created", &[("ETag", format!("\"{id}\""))], b"");
        }
        "GET" | "HEAD" => {
            if fault == Fault::ExpiredDownload
                || !request.query.contains(&format!("sig=download-{id}"))
            {
                drop(state);
                return respond(
                    stream,
                    "403 Forbidden",
                    &[],
                    b"AuthenticationFailed: Signed expiry time has to be after signed start time",
                );
            }
            let Some(data) = state.blobs.get(&id).cloned() else {
                drop(state);
                return respond(stream, "404 Not Found", &[], b"BlobNotFound");
            };
            drop(state);
            let total = data.len();
            let range = request
                .header("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.split_once('-'))
                .map(|(a, b)| {
                    let start = a.parse::<usize>().unwrap_or(0);
                    let end = b
                        .parse::<usize>()
                        .map_or(total.saturating_sub(1), |e| e.min(total.saturating_sub(1)));
                    (start, end)
                });
            match range {
                Some((start, _)) if start >= total => respond(
                    stream,
                    "416 Range Not Satisfiable",
                    &[("Content-Range", format!("bytes */{total}"))],
                    b"",
                ),
                Some((start, end)) => respond(
                    stream,
                    "206 Partial Content",
                    &[("Content-Range", format!("bytes {start}-{end}/{total}"))],
                    &data[start..=end],
                ),
                None => respond(stream, "200 OK", &[], &data),
            }
        }
        _ => {
            drop(state);
            respond(stream, "405 Method Not Allowed", &[], b"");
        }
    }
}
