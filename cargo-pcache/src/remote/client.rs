//! The remote, through Apache OpenDAL: blocking calls with deadlines, and
//! errors sorted into what callers act on, with secrets scrubbed.

use std::fmt;
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use opendal::{ErrorKind, Operator, services};
use pcache_core::remote::{Backend, RemoteSettings, RemoteUrl};

use pcache_core::config::Env;

use super::signing::{Arrived, BodyHasher, SigningKeyPair, Trust};

/// How long a remote may take to answer a small request (a connection, a
/// stat, a listing page) before it counts as unavailable.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Objects this large, from a remote that sends them piece by piece, have
/// their body hashed on a thread of its own while they arrive; a smaller
/// one is hashed faster than a thread starts.
const HASHED_ON_ARRIVAL: u64 = 256 * 1024;

/// The slowest transfer rate tolerated for entries, once the remote has
/// answered: below it, a transfer is abandoned.
const MIN_RATE: f64 = 2.0 * 1024.0 * 1024.0;

/// How long moving `len` bytes may take.
fn transfer_timeout(len: u64) -> Duration {
    Duration::from_secs(5) + Duration::from_secs_f64(len as f64 / MIN_RATE)
}

/// What went wrong with the remote, in words fit for a warning: no
/// credentials, no machine paths beyond the remote's own name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RemoteError {
    /// No answer, or not in time: the remote is down or unreachable.
    Unavailable(String),
    /// The remote refused (permissions, a read-only bucket).
    Refused(String),
    /// Anything else the remote or its configuration said.
    Failed(String),
}

impl RemoteError {
    pub(crate) fn cause(&self) -> &str {
        match self {
            RemoteError::Unavailable(c) | RemoteError::Refused(c) | RemoteError::Failed(c) => c,
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cause())
    }
}

impl std::error::Error for RemoteError {}

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Its key, relative to the remote's root.
    pub(crate) key: String,
    pub(crate) size: u64,
}

/// A connected remote.
pub(crate) struct Remote {
    url: RemoteUrl,
    op: Operator,
    runtime: tokio::runtime::Runtime,
    /// Values that must not appear in messages.
    secrets: Vec<String>,
    /// The keys objects read must be signed with, if any.
    trust: Option<Trust>,
    /// The key objects written are signed with: loaded only by processes
    /// that push ([`Remote::for_pushing`]).
    signer: Option<SigningKeyPair>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Builds the client for `settings`, with the trusted keys in `vars`.
    /// Nothing is sent yet.
    ///
    /// A malformed trusted-key list is an error here, at the first use of
    /// the remote: never a remote that silently accepts anything.
    pub(crate) fn open(settings: &RemoteSettings, vars: &Env) -> Result<Remote, RemoteError> {
        let trust = Trust::from_env(vars).map_err(RemoteError::Failed)?;
        let url = settings.url.clone();
        let mut secrets: Vec<String> = url.password().map(str::to_owned).into_iter().collect();
        let op = match url.backend() {
            Backend::S3 => {
                let mut b = services::S3::default()
                    .bucket(url.host())
                    .root(&root_of(url.path()));
                let region = url
                    .parameter("region")
                    .map(str::to_owned)
                    .or_else(|| vars.get("AWS_REGION"))
                    .or_else(|| vars.get("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| "us-east-1".to_owned());
                b = b.region(&region);
                let endpoint = url
                    .parameter("endpoint")
                    .map(str::to_owned)
                    .or_else(|| vars.get("AWS_ENDPOINT_URL_S3"))
                    .or_else(|| vars.get("AWS_ENDPOINT_URL"));
                if let Some(endpoint) = endpoint {
                    b = b.endpoint(endpoint.trim_end_matches('/'));
                }
                if let (Some(id), Some(secret)) = (
                    vars.get("AWS_ACCESS_KEY_ID"),
                    vars.get("AWS_SECRET_ACCESS_KEY"),
                ) {
                    b = b.access_key_id(&id).secret_access_key(&secret);
                    secrets.push(secret);
                    if let Some(token) = vars.get("AWS_SESSION_TOKEN") {
                        b = b.session_token(&token);
                        secrets.push(token);
                    }
                }
                Operator::new(b).map(|o| o.finish())
            }
            Backend::Redis => {
                let db = match url.path().trim_start_matches('/') {
                    "" => 0,
                    db => db.parse::<i64>().map_err(|_| {
                        RemoteError::Failed(format!(
                            "`{}` is not a Redis database number",
                            url.path().trim_start_matches('/')
                        ))
                    })?,
                };
                let scheme = if url.scheme() == "rediss" {
                    "rediss"
                } else {
                    "redis"
                };
                let mut b = services::Redis::default()
                    .endpoint(&format!("{scheme}://{}", url.host()))
                    .db(db);
                if let Some(user) = url.user() {
                    b = b.username(user);
                }
                if let Some(password) = url.password() {
                    b = b.password(password);
                }
                Operator::new(b).map(|o| o.finish())
            }
            Backend::Webdav => {
                let scheme = url.scheme().trim_start_matches("webdav+");
                let mut b = services::Webdav::default()
                    .endpoint(&format!("{scheme}://{}", url.host()))
                    .root(&root_of(url.path()));
                if let Some(user) = url.user() {
                    b = b.username(user);
                }
                if let Some(password) = url.password() {
                    b = b.password(password);
                }
                Operator::new(b).map(|o| o.finish())
            }
            Backend::Gha => gha_operator(&url, vars, &mut secrets)?,
            Backend::File => {
                // Uploads land in a scratch directory and are renamed into
                // place, so a reader never sees half an object.
                let b = services::Fs::default()
                    .root(url.path())
                    .atomic_write_dir(&format!("{}/.pcache-tmp", url.path()));
                Operator::new(b).map(|o| o.finish())
            }
        };
        let op = op.map_err(|e| RemoteError::Failed(scrub(&secrets, &url, &describe(&e))))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Failed(format!("failed to start the I/O runtime: {e}")))?;
        secrets.retain(|s| s.len() >= 3);
        Ok(Remote {
            url,
            op,
            runtime,
            secrets,
            trust,
            signer: None,
        })
    }

    /// This client, signing what it writes with the key in `vars`, if one
    /// is set. Only processes that push call this: nowhere else is the
    /// secret read.
    pub(crate) fn for_pushing(mut self, vars: &Env) -> Result<Remote, RemoteError> {
        self.signer = SigningKeyPair::from_env(vars).map_err(RemoteError::Failed)?;
        Ok(self)
    }

    /// The keys objects read must be signed with; `None`: any object is
    /// used (after the checks every entry passes).
    pub(crate) fn trust(&self) -> Option<&Trust> {
        self.trust.as_ref()
    }

    /// The key objects written are signed with.
    pub(crate) fn signer(&self) -> Option<&SigningKeyPair> {
        self.signer.as_ref()
    }

    /// Whether objects arrive from this remote piece by piece, over time
    /// (HTTP bodies), rather than at once (a local file read in one go, a
    /// Redis value).
    fn streams(&self) -> bool {
        !matches!(self.url.backend(), Backend::File | Backend::Redis)
    }

    /// The remote's URL (shown redacted).
    pub(crate) fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// Whether the backend can list its objects (Redis cannot).
    pub(crate) fn can_list(&self) -> bool {
        self.op.info().full_capability().list
    }

    /// The size of object `key`, or `None` if there is none.
    pub(crate) fn size(&self, key: &str) -> Result<Option<u64>, RemoteError> {
        match self.call("stat", ANSWER_TIMEOUT, self.op.stat(key)) {
            Ok(meta) => Ok(Some(meta.content_length())),
            Err(Call::Remote(e)) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The object stored at `key`: `None` if there is none. At most its
    /// listed size is read, in a time that allows for its size. With
    /// trusted keys, its body is hashed while it arrives, for
    /// [`signing::open`](super::signing::open).
    pub(crate) fn get_entry(&self, key: &str) -> Result<Option<Arrived>, RemoteError> {
        let Some(len) = self.size(key)? else {
            return Ok(None);
        };
        let hasher = self
            .trust
            .as_ref()
            .filter(|_| len >= HASHED_ON_ARRIVAL && self.streams())
            .and_then(|_| BodyHasher::start());
        // Too short to be an entry, it is still read: the import's checks
        // say what is wrong with it.
        let object = self.get(key, len, hasher.as_ref())?;
        Ok(Some(match hasher {
            Some(hasher) => hasher.finish(object),
            None => Arrived::whole(object),
        }))
    }

    /// Reads `len` bytes of `key` as they arrive, showing each piece to
    /// `hasher`.
    fn get(
        &self,
        key: &str,
        len: u64,
        hasher: Option<&BodyHasher>,
    ) -> Result<Vec<u8>, RemoteError> {
        let read = async {
            let mut pieces = self
                .op
                .reader(key)
                .await?
                .into_stream(0..len.max(1))
                .await?;
            let mut object = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            while let Some(buffer) = pieces.try_next().await? {
                for piece in buffer {
                    if let Some(hasher) = hasher {
                        hasher.feed(&piece);
                    }
                    object.extend_from_slice(&piece);
                }
            }
            Ok(object)
        };
        match self.call("read", transfer_timeout(len), read) {
            Ok(object) => Ok(object),
            Err(Call::Remote(e)) if e.kind() == ErrorKind::RangeNotSatisfied => Ok(Vec::new()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Reads a small object whole (`None` if there is none).
    pub(crate) fn get_small(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        match self.call("read", transfer_timeout(64 * 1024), self.op.read(key)) {
            Ok(buffer) => Ok(Some(buffer.to_vec())),
            Err(Call::Remote(e)) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Stores `bytes` at `key`. On a remote whose objects cannot be
    /// replaced (the GitHub Actions cache), an object already at `key` is
    /// kept, and that is not an error.
    pub(crate) fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        let timeout = transfer_timeout(bytes.len() as u64);
        match self.call("write", timeout, self.op.write(key, bytes)) {
            Ok(_) => Ok(()),
            Err(Call::Remote(e)) if e.kind() == ErrorKind::AlreadyExists && !self.can_replace() => {
                Ok(())
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Whether an object, once written, can be replaced or removed.
    pub(crate) fn can_replace(&self) -> bool {
        self.url.backend() != Backend::Gha
    }

    /// Removes `key` (absent is fine).
    pub(crate) fn delete(&self, key: &str) -> Result<(), RemoteError> {
        self.call("delete", ANSWER_TIMEOUT, self.op.delete(key))
            .map_err(|e| self.error(e))
    }

    /// Every object under `prefix` (which ends with `/`), recursively.
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<Listed>, RemoteError> {
        if !self.can_list() {
            return Err(RemoteError::Failed(format!(
                "a {} remote cannot list its entries; entries still come on demand, as builds miss",
                self.url.backend().name()
            )));
        }
        // A listing is many requests: allow it the time of several.
        let listing = self.op.list_with(prefix).recursive(true);
        match self.call("list", ANSWER_TIMEOUT * 15, listing) {
            Ok(entries) => Ok(entries
                .into_iter()
                .filter(|e| e.metadata().is_file())
                .map(|e| Listed {
                    key: e.path().trim_start_matches('/').to_owned(),
                    size: e.metadata().content_length(),
                })
                .collect()),
            Err(Call::Remote(e)) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Runs `fut` to completion, or gives up after `timeout`.
    fn call<T>(
        &self,
        op: &'static str,
        timeout: Duration,
        fut: impl IntoFuture<Output = opendal::Result<T>>,
    ) -> Result<T, Call> {
        let started = Instant::now();
        self.runtime
            .block_on(async { tokio::time::timeout(timeout, fut.into_future()).await })
            .map_err(|_| Call::Timeout {
                op,
                after: started.elapsed(),
            })?
            .map_err(Call::Remote)
    }

    fn error(&self, call: Call) -> RemoteError {
        match call {
            Call::Timeout { op, after } => RemoteError::Unavailable(format!(
                "no answer to a {op} within {:.1} s",
                after.as_secs_f64()
            )),
            Call::Remote(e) => {
                let text = scrub(&self.secrets, &self.url, &describe(&e));
                match e.kind() {
                    ErrorKind::PermissionDenied => RemoteError::Refused(text),
                    _ if e.is_temporary() || e.kind() == ErrorKind::RateLimited => {
                        RemoteError::Unavailable(text)
                    }
                    _ if is_connection_error(&e) => RemoteError::Unavailable(text),
                    _ => RemoteError::Failed(text),
                }
            }
        }
    }
}

/// The outcome of one call that did not succeed.
enum Call {
    Timeout { op: &'static str, after: Duration },
    Remote(opendal::Error),
}

/// The namespace pcache's objects take in the GitHub Actions cache (its
/// `version`): other tools' entries under the same keys stay apart.
#[cfg(feature = "gha")]
const GHA_NAMESPACE: &str = "pcache";

/// The GitHub Actions cache, with the service address and the runtime
/// token the runner provides.
#[cfg(feature = "gha")]
fn gha_operator(
    url: &RemoteUrl,
    vars: &Env,
    secrets: &mut Vec<String>,
) -> Result<opendal::Result<Operator>, RemoteError> {
    let Some(token) = vars.get("ACTIONS_RUNTIME_TOKEN").filter(|t| !t.is_empty()) else {
        return Err(RemoteError::Failed(
            "ACTIONS_RUNTIME_TOKEN is not set: the workflow must expose the runtime token to the build (see README, \"Use in GitHub Actions\")".to_owned(),
        ));
    };
    secrets.push(token.clone());
    // As the runner's own tools choose: the results service for the
    // current protocol, the older cache service otherwise.
    let v2 = vars
        .get("ACTIONS_CACHE_SERVICE_V2")
        .is_some_and(|v| !v.is_empty());
    let endpoint = if v2 {
        vars.get("ACTIONS_RESULTS_URL")
    } else {
        vars.get("ACTIONS_CACHE_URL")
            .or_else(|| vars.get("ACTIONS_RESULTS_URL"))
    };
    let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) else {
        return Err(RemoteError::Failed(
            "neither ACTIONS_RESULTS_URL nor ACTIONS_CACHE_URL is set: the gha remote works inside a GitHub Actions job whose workflow exposes them (see README, \"Use in GitHub Actions\")".to_owned(),
        ));
    };
    let prefix = format!("{}{}", url.host(), url.path());
    let prefix = prefix.trim_matches('/');
    let root = if prefix.is_empty() {
        "/".to_owned()
    } else {
        format!("/{prefix}/")
    };
    let builder = services::Ghac::default()
        .root(&root)
        .version(GHA_NAMESPACE)
        .endpoint(&endpoint)
        .runtime_token(&token);
    Ok(Operator::new(builder).map(|o| o.finish()))
}

#[cfg(not(feature = "gha"))]
fn gha_operator(
    _: &RemoteUrl,
    _: &Env,
    _: &mut Vec<String>,
) -> Result<opendal::Result<Operator>, RemoteError> {
    Err(RemoteError::Failed(
        "this cargo-pcache was built without the `gha` feature; reinstall it with default features"
            .to_owned(),
    ))
}

/// OpenDAL wants a root that starts with `/`.
fn root_of(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        format!("{path}/")
    }
}

/// One line: the error's kind and message, and the deepest cause.
fn describe(e: &opendal::Error) -> String {
    let mut text = e.kind().to_string();
    let message = e.message().trim();
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    // An HTTP service's answer is in the context, as `status: 403`.
    let full = e.to_string();
    if let Some(at) = full.find("status: ") {
        let code: String = full[at + 8..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if code.len() == 3 {
            text.push_str(&format!(" (HTTP {code})"));
        }
    }
    let mut source = std::error::Error::source(e);
    let mut deepest = None;
    while let Some(s) = source {
        deepest = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = deepest.filter(|c| !c.is_empty()) {
        text.push_str(": ");
        text.push_str(&cause);
    }
    let text = text.replace(['\n', '\r'], " ");
    if text.chars().count() > 300 {
        text.chars().take(300).collect::<String>() + "…"
    } else {
        text
    }
}

fn is_connection_error(e: &opendal::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::TimedOut
                    | K::UnexpectedEof
                    | K::BrokenPipe
            ) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

fn scrub(secrets: &[String], url: &RemoteUrl, text: &str) -> String {
    let mut text = url.scrub(text);
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        text = text.replace(secret.as_str(), "***");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_get_time_for_their_size() {
        assert_eq!(transfer_timeout(0), Duration::from_secs(5));
        assert!(transfer_timeout(64 << 20) >= Duration::from_secs(37));
    }

    #[test]
    fn roots_start_and_end_with_a_slash() {
        assert_eq!(root_of(""), "/");
        assert_eq!(root_of("/team/cache"), "/team/cache/");
    }
}
