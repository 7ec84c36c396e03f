//! The agent's own Ed25519 key, whose did:key is its agent id at an Agent
//! Assembly gateway.
//!
//! Guarantees: the secret never reaches a log (`Debug` shows the did:key
//! only); a key file is read as 64 hex characters or 32 raw bytes and
//! anything else is a typed [`KeyError`]; [`SigningKeyFile::load_or_create`]
//! writes a new key readable by its owner only (mode 0600 on Unix) and
//! never overwrites an existing file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey};

/// An agent's Ed25519 signing key. Cheap to clone.
#[derive(Clone)]
pub struct AgentSigningKey {
    key: SigningKey,
}

impl std::fmt::Debug for AgentSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSigningKey")
            .field("did", &self.did())
            .finish_non_exhaustive()
    }
}

/// Why a key could not be read or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file holds neither 64 hex characters nor 32 bytes.
    #[error("key file {path} holds neither 64 hex characters nor 32 raw bytes ({len} bytes)")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// How many bytes it holds.
        len: usize,
    },
    /// The OS could not supply randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

impl AgentSigningKey {
    /// The key with this 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        AgentSigningKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A new key from the OS's randomness (an ephemeral agent: its id is
    /// new too).
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// The key stored in `path`: 64 hex characters (surrounding whitespace
    /// ignored) or 32 raw bytes.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes).ok_or_else(|| KeyError::Malformed {
            path: path.to_owned(),
            len: bytes.len(),
        })
    }

    /// The key in `path`; when there is no such file, a new key written
    /// there as hex, readable by its owner only. The same agent id across
    /// restarts needs the same file.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        match Self::from_file(path) {
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let key = Self::generate()?;
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = match options.open(path) {
            Ok(f) => f,
            // Someone else created it meanwhile: theirs wins.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Self::from_file(path)
            }
            Err(e) => return Err(io(e)),
        };
        file.write_all(format!("{}\n", hex(key.key.as_bytes())).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(key)
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let text = text.trim();
            if text.len() == 64 {
                let mut seed = [0u8; 32];
                for (i, byte) in seed.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                return Some(Self::from_seed(seed));
            }
        }
        let seed: [u8; 32] = bytes.try_into().ok()?;
        Some(Self::from_seed(seed))
    }

    /// The agent id this key stands for: `did:key:z…`.
    pub fn did(&self) -> String {
        tether_core::did_key::did_key(self.key.verifying_key().as_bytes())
    }

    /// The public key as the lifecycle service wants it: 64 lowercase hex
    /// characters.
    pub fn public_key_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    /// The possession proof for a registration nonce: the raw 64-byte
    /// signature.
    pub(crate) fn sign(&self, nonce: &[u8]) -> Vec<u8> {
        self.key.sign(nonce).to_bytes().to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier as _;

    #[test]
    fn a_key_file_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        let made = AgentSigningKey::load_or_create(&path).unwrap();
        let again = AgentSigningKey::load_or_create(&path).unwrap();
        assert_eq!(made.did(), again.did());
        assert_eq!(AgentSigningKey::from_file(&path).unwrap().did(), made.did());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{made:?}").contains(&hex(made.key.as_bytes())));
    }

    #[test]
    fn raw_bytes_and_hex_name_the_same_key_and_junk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [9u8; 32]).unwrap();
        let text = dir.path().join("hex");
        std::fs::write(&text, format!("  {}\n", "09".repeat(32))).unwrap();
        assert_eq!(
            AgentSigningKey::from_file(&raw).unwrap().did(),
            AgentSigningKey::from_file(&text).unwrap().did()
        );
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a key").unwrap();
        assert!(matches!(
            AgentSigningKey::from_file(&junk),
            Err(KeyError::Malformed { len: 9, .. })
        ));
    }

    #[test]
    fn the_proof_verifies_under_the_did_key() {
        let key = AgentSigningKey::from_seed([3; 32]);
        let public = tether_core::did_key::public_key_of(&key.did()).unwrap();
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&key.sign(b"nonce")).unwrap();
        assert!(verifying.verify(b"nonce", &sig).is_ok());
        assert_eq!(key.public_key_hex(), hex(&public));
    }
}
