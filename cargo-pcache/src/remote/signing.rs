//! Signed remote objects, where the storage client runs: Ed25519 over the
//! statement `pcache_core::remote::signature` defines (a domain tag, the
//! key's name, the object's remote path and the SHA-256 of its body).
//!
//! - With `PCACHE_REMOTE_TRUSTED_KEYS`, an object is used only when it is
//!   signed, for its own path, by one of those keys; anything else is
//!   refused before a byte of it is written locally.
//! - With `PCACHE_REMOTE_SIGNING_KEY` (or `…_FILE`), read only by processes
//!   that push, every object pushed is signed.
//! - With neither, objects go and come as they are (a signed object's body
//!   is still unwrapped).
//!
//! Key material never appears in a message: errors name the variable and
//! the key's name only.

use std::fmt;
use std::sync::mpsc;
use std::thread;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use pcache_core::config::Env;
use pcache_core::remote::signature::{Envelope, KeySpec, MAGIC, body_offset, statement};
use pcache_core::remote::{SIGNING_KEY_FILE_VAR, SIGNING_KEY_VAR, TRUSTED_KEYS_VAR};
use sha2::{Digest, Sha256};

/// The public keys remote objects must be signed with.
pub(crate) struct Trust {
    keys: Vec<(String, VerifyingKey)>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Trust {
    /// The trusted keys set in `env`; `None` when there are none.
    ///
    /// # Errors
    ///
    /// A message naming the variable and what is wrong with it.
    pub(crate) fn from_env(env: &Env) -> Result<Option<Trust>, String> {
        let Some(text) = env.get(TRUSTED_KEYS_VAR).filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        let bad = |e: String| format!("{TRUSTED_KEYS_VAR}: {e}");
        let mut keys = Vec::new();
        for spec in KeySpec::parse_list(&text).map_err(bad)? {
            let bytes: [u8; 32] = decode_key(spec.material)
                .ok_or_else(|| bad(format!("key `{}` is not 32 bytes of base64", spec.name)))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| bad(format!("key `{}` is not an Ed25519 public key", spec.name)))?;
            keys.push((spec.name.to_owned(), key));
        }
        Ok(Some(Trust { keys }))
    }

    /// The names of the trusted keys.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.keys.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Whether `object` fetched from `remote_path` is signed for that path
    /// by a trusted key. `hashed`, the body's SHA-256 worked out while it
    /// arrived, is used when it covers exactly the body.
    fn verify(
        &self,
        envelope: &Envelope<'_>,
        remote_path: &str,
        hashed: Option<&BodyHash>,
    ) -> Result<(), Refusal> {
        let Some((_, key)) = self.keys.iter().find(|(name, _)| name == envelope.name) else {
            return Err(Refusal(format!(
                "it is signed by `{}`, which is not one of the trusted keys ({})",
                envelope.name,
                self.names().join(", ")
            )));
        };
        let digest = match hashed {
            Some(hashed) if hashed.len == envelope.body.len() as u64 => hashed.sha256,
            _ => sha256(envelope.body),
        };
        let message = statement(envelope.name, remote_path, &digest);
        key.verify(&message, &Signature::from_bytes(&envelope.signature))
            .map_err(|_| {
                Refusal(format!(
                    "its signature by `{}` does not match its contents and path",
                    envelope.name
                ))
            })
    }
}

/// The key objects are signed with when pushed.
pub(crate) struct SigningKeyPair {
    name: String,
    key: SigningKey,
}

impl fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyPair")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SigningKeyPair {
    /// The signing key set in `env` (the variable, else the file it
    /// names); `None` when there is none. Only processes that push call
    /// this.
    ///
    /// # Errors
    ///
    /// A message naming the variable (or the file) and what is wrong.
    pub(crate) fn from_env(env: &Env) -> Result<Option<SigningKeyPair>, String> {
        let (text, source) = match env.get(SIGNING_KEY_VAR).filter(|t| !t.trim().is_empty()) {
            Some(text) => (text, SIGNING_KEY_VAR.to_owned()),
            None => match env
                .get(SIGNING_KEY_FILE_VAR)
                .filter(|t| !t.trim().is_empty())
            {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        format!("{SIGNING_KEY_FILE_VAR}: failed to read `{path}`: {e}")
                    })?;
                    (text, format!("{SIGNING_KEY_FILE_VAR} (`{path}`)"))
                }
                None => return Ok(None),
            },
        };
        // The file may hold the line `cargo pcache keygen` printed.
        let text = text.trim();
        let text = text
            .strip_prefix(SIGNING_KEY_VAR)
            .and_then(|t| t.strip_prefix('='))
            .unwrap_or(text);
        let spec = KeySpec::parse(text).map_err(|e| format!("{source}: {e}"))?;
        let seed: [u8; 32] = decode_key(spec.material)
            .ok_or_else(|| format!("{source}: key `{}` is not 32 bytes of base64", spec.name))?;
        Ok(Some(SigningKeyPair {
            name: spec.name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        }))
    }

    /// A new key pair named `name`, from the operating system's randomness.
    ///
    /// # Errors
    ///
    /// When the name is not a key name, or there is no randomness.
    pub(crate) fn generate(name: &str) -> Result<SigningKeyPair, String> {
        if !pcache_core::remote::signature::is_key_name(name) {
            return Err(format!(
                "`{name}` is not a key name: use 1 to {} letters, digits, `.`, `_` or `-`",
                pcache_core::remote::signature::MAX_NAME_LEN
            ));
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no randomness for a key: {e}"))?;
        Ok(SigningKeyPair {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The key's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The secret, in base64.
    pub(crate) fn secret(&self) -> String {
        BASE64.encode(self.key.to_bytes())
    }

    /// The public key, in base64.
    pub(crate) fn public(&self) -> String {
        BASE64.encode(self.key.verifying_key().to_bytes())
    }

    /// The object to store at `remote_path` for the entry file `body`.
    pub(crate) fn seal(&self, remote_path: &str, body: &[u8]) -> Vec<u8> {
        let message = statement(&self.name, remote_path, &sha256(body));
        let signature = self.key.sign(&message).to_bytes();
        Envelope::seal(&self.name, &signature, body)
    }
}

/// Why an object fetched from the remote was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub(crate) String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The entry file in `arrived`, fetched from `remote_path`: with `trust`,
/// only if a trusted key signed it for that path.
///
/// # Errors
///
/// The [`Refusal`]: unsigned (with trusted keys), signed by another key, a
/// signature that does not match, or signature data that does not parse.
pub(crate) fn open<'a>(
    trust: Option<&Trust>,
    remote_path: &str,
    arrived: &'a Arrived,
) -> Result<&'a [u8], Refusal> {
    let object = &arrived.object[..];
    match (
        Envelope::parse(object).map_err(|e| Refusal(e.to_string()))?,
        trust,
    ) {
        (None, None) => Ok(object),
        (None, Some(_)) => Err(Refusal(format!(
            "it is not signed, and {TRUSTED_KEYS_VAR} asks for signed objects"
        ))),
        (Some(envelope), trust) => {
            if let Some(trust) = trust {
                trust.verify(&envelope, remote_path, arrived.hashed.as_ref())?;
            }
            Ok(envelope.body)
        }
    }
}

/// An object read from the remote, with its body's hash when a
/// [`BodyHasher`] worked it out on the way. Only the hasher fed the very
/// bytes of the object pairs a hash with it.
#[derive(Debug)]
pub(crate) struct Arrived {
    object: Vec<u8>,
    hashed: Option<BodyHash>,
}

impl Arrived {
    /// An object read whole, its body to be hashed when checked.
    pub(crate) fn whole(object: Vec<u8>) -> Arrived {
        Arrived {
            object,
            hashed: None,
        }
    }
}

/// A signed object's body's SHA-256, and how many bytes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BodyHash {
    sha256: [u8; 32],
    len: u64,
}

/// Hashes a signed object's body on a thread of its own while the object
/// arrives piece by piece, so that checking the signature of a large
/// object adds little to its transfer: the pieces are shared, not copied.
#[derive(Debug)]
pub(crate) struct BodyHasher {
    pieces: mpsc::Sender<Bytes>,
    thread: thread::JoinHandle<Option<BodyHash>>,
}

impl BodyHasher {
    /// A hasher waiting for the object's first piece; `None` when no thread
    /// can be started (the body is then hashed once it is whole).
    pub(crate) fn start() -> Option<BodyHasher> {
        let (pieces, arriving) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("pcache-body-sha256".into())
            .spawn(move || hash_body(&arriving))
            .ok()?;
        Some(BodyHasher { pieces, thread })
    }

    /// The object's next piece.
    pub(crate) fn feed(&self, piece: &Bytes) {
        // The thread stops early for an object that is not signed.
        let _ = self.pieces.send(piece.clone());
    }

    /// `object`, every piece of which was fed, with its body's hash (none
    /// for an object that is not signed).
    pub(crate) fn finish(self, object: Vec<u8>) -> Arrived {
        drop(self.pieces);
        Arrived {
            object,
            hashed: self.thread.join().ok().flatten(),
        }
    }
}

/// The body's hash, from the object's pieces in order: the signature data
/// before the body is skipped, as [`Envelope::parse`] does.
fn hash_body(pieces: &mpsc::Receiver<Bytes>) -> Option<BodyHash> {
    let mut head = Vec::new();
    let mut body: Option<(Sha256, u64)> = None;
    for piece in pieces {
        if let Some((sha, len)) = &mut body {
            sha.update(&piece);
            *len += piece.len() as u64;
            continue;
        }
        head.extend_from_slice(&piece);
        if head.len() <= MAGIC.len() {
            continue;
        }
        let at = body_offset(&head)?;
        if head.len() >= at {
            let mut sha = Sha256::new();
            sha.update(&head[at..]);
            body = Some((sha, (head.len() - at) as u64));
            head = Vec::new();
        }
    }
    body.map(|(sha, len)| BodyHash {
        sha256: sha.finalize().into(),
        len,
    })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn decode_key(material: &str) -> Option<[u8; 32]> {
    BASE64.decode(material.trim()).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn a_signed_object_opens_only_for_its_path_and_a_trusted_key() {
        let ci = SigningKeyPair::generate("ci").unwrap();
        let other = SigningKeyPair::generate("ci").unwrap();
        let trust = Trust::from_env(&env(&[(
            TRUSTED_KEYS_VAR,
            &format!("old:{},ci:{}", other.public(), ci.public()),
        )]))
        .unwrap()
        .unwrap();
        let trust = Trust {
            keys: trust.keys.into_iter().filter(|(n, _)| n == "ci").collect(),
        };
        let body = b"PCE entry bytes".to_vec();
        let sealed = ci.seal("v3/a/b/c", &body);
        assert_eq!(
            open(Some(&trust), "v3/a/b/c", &Arrived::whole(sealed.clone())).unwrap(),
            body
        );
        assert_eq!(
            open(None, "v3/a/b/c", &Arrived::whole(sealed.clone())).unwrap(),
            body
        );
        // Replayed at another path.
        assert!(open(Some(&trust), "v3/a/b/d", &Arrived::whole(sealed.clone())).is_err());
        // Another key under the same name.
        let forged = other.seal("v3/a/b/c", &body);
        assert!(open(Some(&trust), "v3/a/b/c", &Arrived::whole(forged)).is_err());
        // The body replaced under the signature.
        let mut replaced = sealed.clone();
        let last = replaced.len() - 1;
        replaced[last] ^= 1;
        assert!(open(Some(&trust), "v3/a/b/c", &Arrived::whole(replaced)).is_err());
        // Unsigned: fine without trusted keys only.
        assert_eq!(
            open(None, "v3/a/b/c", &Arrived::whole(body.clone())).unwrap(),
            body
        );
        let refused = open(Some(&trust), "v3/a/b/c", &Arrived::whole(body.clone())).unwrap_err();
        assert!(refused.0.contains("not signed"), "{refused}");
    }

    /// What a [`BodyHasher`] makes of `object` arriving in `pieces`-byte
    /// pieces.
    fn arriving_in_pieces(object: &[u8], pieces: usize) -> Arrived {
        let hasher = BodyHasher::start().unwrap();
        for piece in object.chunks(pieces) {
            hasher.feed(&Bytes::copy_from_slice(piece));
        }
        hasher.finish(object.to_vec())
    }

    fn hashed_in_pieces(object: &[u8], pieces: usize) -> Option<BodyHash> {
        arriving_in_pieces(object, pieces).hashed
    }

    #[test]
    fn the_body_hashed_while_it_arrives_is_the_body_parse_finds() {
        let ci = SigningKeyPair::generate("a-longer-key-name").unwrap();
        let trust = Trust::from_env(&env(&[(
            TRUSTED_KEYS_VAR,
            &format!("a-longer-key-name:{}", ci.public()),
        )]))
        .unwrap()
        .unwrap();
        let body: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
        let sealed = ci.seal("v3/a/b/c", &body);
        let whole = BodyHash {
            sha256: sha256(&body),
            len: body.len() as u64,
        };
        // Pieces that end inside the magic, the name, the signature, the
        // body, and the whole object at once.
        for pieces in [1, 5, 9, 40, 100, 4096, sealed.len()] {
            assert_eq!(hashed_in_pieces(&sealed, pieces), Some(whole), "{pieces}");
        }
        let arrived = arriving_in_pieces(&sealed, 4096);
        assert_eq!(open(Some(&trust), "v3/a/b/c", &arrived).unwrap(), body);
        // What arrived is what is judged: a body changed in transit hashes
        // differently, and its signature does not match.
        let mut replaced = sealed.clone();
        replaced[sealed.len() / 2] ^= 1;
        let arrived = arriving_in_pieces(&replaced, 4096);
        assert_ne!(arrived.hashed, Some(whole));
        assert!(open(Some(&trust), "v3/a/b/c", &arrived).is_err());
        // A hash that does not cover exactly the body is not used: the body
        // is hashed in place.
        let short = Arrived {
            object: replaced,
            hashed: Some(BodyHash {
                sha256: whole.sha256,
                len: whole.len - 1,
            }),
        };
        assert!(open(Some(&trust), "v3/a/b/c", &short).is_err());
        // Unsigned objects, and pieces too short to tell, hash nothing.
        assert_eq!(hashed_in_pieces(&body, 1000), None);
        assert_eq!(hashed_in_pieces(&sealed[..8], 3), None);
        assert_eq!(hashed_in_pieces(b"", 1), None);
    }

    #[test]
    fn keys_are_read_from_their_variables_and_errors_keep_them_secret() {
        let pair = SigningKeyPair::generate("team").unwrap();
        let secret = pair.secret();
        let from_var =
            SigningKeyPair::from_env(&env(&[(SIGNING_KEY_VAR, &format!("team:{secret}"))]))
                .unwrap()
                .unwrap();
        assert_eq!(from_var.public(), pair.public());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, format!("{SIGNING_KEY_VAR}=team:{secret}\n")).unwrap();
        let from_file =
            SigningKeyPair::from_env(&env(&[(SIGNING_KEY_FILE_VAR, file.to_str().unwrap())]))
                .unwrap()
                .unwrap();
        assert_eq!(from_file.public(), pair.public());
        assert!(SigningKeyPair::from_env(&env(&[])).unwrap().is_none());
        assert!(Trust::from_env(&env(&[])).unwrap().is_none());

        let short = &secret[..20];
        for bad in [
            format!("team:{short}"),
            format!("team {secret}"),
            format!("/:{secret}"),
        ] {
            let err = SigningKeyPair::from_env(&env(&[(SIGNING_KEY_VAR, &bad)])).unwrap_err();
            assert!(err.contains(SIGNING_KEY_VAR), "{err}");
            assert!(!err.contains(short), "{err}");
            let err = Trust::from_env(&env(&[(TRUSTED_KEYS_VAR, &bad)])).unwrap_err();
            assert!(
                err.contains(TRUSTED_KEYS_VAR) && !err.contains(short),
                "{err}"
            );
        }
        assert!(SigningKeyPair::generate("no spaces").is_err());
        assert!(!format!("{pair:?}").contains(&secret));
    }
}
