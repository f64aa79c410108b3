//! The backup file's outer format: everything but a format version is sealed under a key
//! stretched from the user's passphrase.
//!
//! ```text
//! "kiyeovo-backup" (14 bytes) ‖ format (1) ‖ salt (16) ‖ nonce (24) ‖ length (8, LE) ‖ ciphertext
//! ciphertext = XChaCha20-Poly1305(Argon2id(passphrase, salt), nonce, contents, aad = the 63 bytes before it)
//! ```
//!
//! Format 1 fixes the Argon2id parameters (RFC 9106 §4, the second recommended option: 64 MiB,
//! 3 passes, 4 lanes), so a file cannot ask a reader for a cheaper or a ruinously expensive
//! derivation. The salt and nonce are random per file; the length is authenticated, so a file cut
//! short is reported as cut short rather than as a wrong passphrase.
//!
//! Parsing ([`parse`]) is separate from the derivation and decryption ([`Sealed::open`]) so the
//! decoder can be fuzzed without paying for Argon2id on every input.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// What every backup file starts with.
pub const MAGIC: &[u8; 14] = b"kiyeovo-backup";
/// The format this version writes and the newest it reads.
pub const FORMAT: u8 = 1;
pub const SALT_LEN: usize = 16;
pub const NONCE_LEN: usize = 24;
/// Magic, format, salt, nonce and length: everything before the ciphertext.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + SALT_LEN + NONCE_LEN + 8;
/// Largest backup file read or written (the whole file is held in memory).
pub const MAX_FILE_BYTES: usize = 512 << 20;
/// Argon2id memory of format 1, in KiB (64 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes of format 1.
pub const ARGON2_PASSES: u32 = 3;
/// Argon2id lanes of format 1.
pub const ARGON2_LANES: u32 = 4;
/// Shortest passphrase a backup is written with.
pub const MIN_PASSPHRASE_CHARS: usize = 10;
/// Longest passphrase accepted (bounds the work per attempt).
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

/// Why a backup could not be written or read. Each says what happened in words the window
/// shows; none carries the passphrase or any content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("this is not a Kiyeovo backup file")]
    NotABackup,
    #[error("this backup was written by a newer version of Kiyeovo (backup format {0})")]
    NewerFormat(u8),
    #[error("the backup file is incomplete: {missing} bytes are missing at its end")]
    Truncated { missing: u64 },
    #[error("the backup file has {0} unexpected bytes after its end")]
    TrailingBytes(u64),
    #[error("the backup file is larger than Kiyeovo reads ({MAX_FILE_BYTES} bytes)")]
    TooLarge,
    #[error("the passphrase is wrong, or the file was changed after it was written")]
    WrongPassphraseOrChanged,
    #[error("the passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} characters")]
    PassphraseTooShort,
    #[error("the passphrase is too long")]
    PassphraseTooLong,
    #[error("the backup opened, but what it holds is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Io(String),
    #[error("the database could not be copied: {0}")]
    Database(String),
}

impl BackupError {
    /// The message and next step the window shows.
    pub fn to_ui(&self) -> crate::api::UiError {
        use crate::api::{ErrorCode, UiError};
        let (code, hint) = match self {
            BackupError::NotABackup => (ErrorCode::InvalidInput, "Choose the file Kiyeovo wrote: its name ends in .kiyeovo-backup."),
            BackupError::NewerFormat(_) => (ErrorCode::InvalidInput, "Install the newest version of Kiyeovo, then restore again."),
            BackupError::Truncated { .. } | BackupError::TrailingBytes(_) | BackupError::TooLarge => (ErrorCode::InvalidInput, "This copy of the file is incomplete or altered: copy it again from where you keep your backups."),
            BackupError::WrongPassphraseOrChanged => (ErrorCode::InvalidInput, "Type the passphrase again (capitals count). If it is right, this copy was altered: use another copy."),
            BackupError::PassphraseTooShort | BackupError::PassphraseTooLong => (ErrorCode::InvalidInput, "Choose a passphrase of at least 10 characters; a few unrelated words are easy to remember."),
            BackupError::Damaged(_) => (ErrorCode::InvalidInput, "Use another copy of the backup."),
            BackupError::Io(_) => (ErrorCode::DataDir, "Check that the folder exists and that you may write there (or read the file), then try again."),
            BackupError::Database(_) => (ErrorCode::Database, "Check free disk space, then try again."),
        };
        UiError {
            code,
            message: self.to_string(),
            hint: hint.to_string(),
        }
    }
}

/// A parsed file, not yet opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub salt: [u8; SALT_LEN],
    pub nonce: [u8; NONCE_LEN],
    header: &'a [u8],
    ciphertext: &'a [u8],
}

/// Reads the outer format: right magic, a format this version knows, exactly the bytes the
/// header announces. Nothing is derived or decrypted yet.
pub fn parse(bytes: &[u8]) -> Result<Sealed<'_>, BackupError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(BackupError::TooLarge);
    }
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return Err(BackupError::NotABackup);
    };
    let missing = (HEADER_LEN.saturating_sub(bytes.len())) as u64;
    let (&format, rest) = rest
        .split_first()
        .ok_or(BackupError::Truncated { missing })?;
    match format {
        FORMAT => {}
        0 => return Err(BackupError::NotABackup),
        newer => return Err(BackupError::NewerFormat(newer)),
    }
    if missing > 0 {
        return Err(BackupError::Truncated { missing });
    }
    let (salt, rest) = rest.split_at(SALT_LEN);
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (length, ciphertext) = rest.split_at(8);
    let length = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    let have = ciphertext.len() as u64;
    if have < length {
        return Err(BackupError::Truncated {
            missing: length - have,
        });
    }
    if have > length {
        return Err(BackupError::TrailingBytes(have - length));
    }
    Ok(Sealed {
        salt: salt.try_into().expect("SALT_LEN bytes"),
        nonce: nonce.try_into().expect("NONCE_LEN bytes"),
        header: &bytes[..HEADER_LEN],
        ciphertext,
    })
}

fn check_passphrase_len(passphrase: &str) -> Result<(), BackupError> {
    if passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(BackupError::PassphraseTooLong);
    }
    Ok(())
}

/// The file key of format 1: Argon2id over the passphrase with the file's salt.
pub fn derive_key(
    passphrase: &str,
    salt: &[u8; SALT_LEN],
) -> Result<Zeroizing<[u8; 32]>, BackupError> {
    check_passphrase_len(passphrase)?;
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, Some(32))
        .expect("format 1 parameters are valid");
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut *key)
        .map_err(|e| BackupError::Damaged(format!("key derivation: {e}")))?;
    Ok(key)
}

impl Sealed<'_> {
    /// Decrypts with a derived file key. Any change to the header or the ciphertext, or another
    /// key, fails the same way: AEAD cannot tell them apart, and neither should an attacker.
    pub fn open_with_key(&self, key: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, BackupError> {
        XChaCha20Poly1305::new(key.into())
            .decrypt(
                XNonce::from_slice(&self.nonce),
                Payload {
                    msg: self.ciphertext,
                    aad: self.header,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| BackupError::WrongPassphraseOrChanged)
    }

    /// Derives the key from `passphrase` and decrypts.
    pub fn open(&self, passphrase: &str) -> Result<Zeroizing<Vec<u8>>, BackupError> {
        self.open_with_key(&*derive_key(passphrase, &self.salt)?)
    }
}

/// Seals `contents` under `key` with the given salt (recorded for the reader's derivation) and
/// nonce. [`seal`] picks both at random; tests and the fuzz corpus fix them.
pub fn seal_with_key(
    key: &[u8; 32],
    salt: &[u8; SALT_LEN],
    nonce: &[u8; NONCE_LEN],
    contents: &[u8],
) -> Result<Vec<u8>, BackupError> {
    // Tag included: the ciphertext is 16 bytes longer than the contents.
    let length = contents.len() as u64 + 16;
    if HEADER_LEN as u64 + length > MAX_FILE_BYTES as u64 {
        return Err(BackupError::TooLarge);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + length as usize);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(salt);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&length.to_le_bytes());
    let ciphertext = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: contents,
                aad: &out,
            },
        )
        .map_err(|_| BackupError::TooLarge)?;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Seals `contents` under `passphrase` with a fresh random salt and nonce.
pub fn seal(passphrase: &str, contents: &[u8]) -> Result<Vec<u8>, BackupError> {
    seal_keeping_key(passphrase, contents).map(|(sealed, _)| sealed)
}

/// [`seal`], also returning the file key (to check what was written without deriving again).
pub fn seal_keeping_key(
    passphrase: &str,
    contents: &[u8],
) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(BackupError::PassphraseTooShort);
    }
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let key = derive_key(passphrase, &salt)?;
    let sealed = seal_with_key(&key, &salt, &nonce, contents)?;
    Ok((sealed, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn file(contents: &[u8]) -> Vec<u8> {
        seal_with_key(&KEY, &[1; SALT_LEN], &[2; NONCE_LEN], contents).unwrap()
    }

    #[test]
    fn a_sealed_file_opens_with_its_key_and_says_only_its_format() {
        let bytes = file(b"the contents");
        assert_eq!(bytes.len(), HEADER_LEN + 12 + 16);
        assert_eq!(&bytes[..15], b"kiyeovo-backup\x01");
        assert!(!bytes.windows(8).any(|w| w == b"contents"));
        let sealed = parse(&bytes).unwrap();
        assert_eq!(
            sealed.open_with_key(&KEY).unwrap().as_slice(),
            b"the contents"
        );
    }

    /// Every way a file can be wrong, each with its own words, none a panic.
    #[test]
    fn each_damage_is_refused_with_its_reason() {
        let good = file(b"the contents");
        let mut newer = good.clone();
        newer[14] = 2;
        let mut zero = good.clone();
        zero[14] = 0;
        let mut long = good.clone();
        long.push(0);
        let mut flipped_salt = good.clone();
        flipped_salt[15] ^= 1;
        let mut flipped_body = good.clone();
        *flipped_body.last_mut().unwrap() ^= 1;
        let mut flipped_length = good.clone();
        flipped_length[HEADER_LEN - 8] ^= 1;
        let table: Vec<(&str, Vec<u8>, BackupError)> = vec![
            ("empty", vec![], BackupError::NotABackup),
            (
                "another file",
                b"SQLite format 3\0....".to_vec(),
                BackupError::NotABackup,
            ),
            (
                "magic only",
                MAGIC.to_vec(),
                BackupError::Truncated { missing: 49 },
            ),
            ("future format", newer, BackupError::NewerFormat(2)),
            ("format 0", zero, BackupError::NotABackup),
            (
                "header cut",
                good[..HEADER_LEN - 1].to_vec(),
                BackupError::Truncated { missing: 1 },
            ),
            (
                "body cut",
                good[..good.len() - 5].to_vec(),
                BackupError::Truncated { missing: 5 },
            ),
            ("byte appended", long, BackupError::TrailingBytes(1)),
            (
                "salt changed",
                flipped_salt,
                BackupError::WrongPassphraseOrChanged,
            ),
            (
                "ciphertext changed",
                flipped_body,
                BackupError::WrongPassphraseOrChanged,
            ),
            // A length one too high or low: cut short or one byte too many.
            (
                "length changed",
                flipped_length,
                BackupError::Truncated { missing: 1 },
            ),
        ];
        for (what, bytes, want) in table {
            let got = parse(&bytes).and_then(|s| s.open_with_key(&KEY).map(|_| ()));
            assert_eq!(got, Err(want), "{what}");
        }
        let other_key = parse(&good).unwrap().open_with_key(&[8; 32]);
        assert_eq!(other_key, Err(BackupError::WrongPassphraseOrChanged));
    }

    #[test]
    fn passphrases_are_bounded_and_stretched_with_the_stated_parameters() {
        assert_eq!(seal("short", b"x"), Err(BackupError::PassphraseTooShort));
        let long = "x".repeat(MAX_PASSPHRASE_BYTES + 1);
        assert_eq!(seal(&long, b"x"), Err(BackupError::PassphraseTooLong));
        let bytes = seal("correct horse battery", b"secret").unwrap();
        let sealed = parse(&bytes).unwrap();
        assert_eq!(
            sealed.open("correct horse battery").unwrap().as_slice(),
            b"secret"
        );
        assert_eq!(
            sealed.open("correct horse batterY"),
            Err(BackupError::WrongPassphraseOrChanged)
        );
        // Argon2id v1.3, 64 MiB, 3 passes, 4 lanes: the key an independent implementation gives
        // (Python argon2-cffi, `hash_secret_raw(b"correct horse battery", bytes(range(16)),
        // 3, 65536, 4, 32, Type.ID)`).
        let salt: [u8; 16] = core::array::from_fn(|i| i as u8);
        let key = derive_key("correct horse battery", &salt).unwrap();
        assert_eq!(data_encoding::HEXLOWER.encode(&*key), KNOWN_ANSWER);
    }

    const KNOWN_ANSWER: &str = "5995fc5ddabdb7f10fae2ad796270c269821d70b0efb8fb60262a81f1b6f0eb8";
}
