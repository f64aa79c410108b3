//! A profile's first run, and bringing an identity back on a new machine from its recovery
//! phrase.
//!
//! Both happen before [`crate::service::App::start`]: a profile that has neither an identity in
//! the keyring nor a database is new, and the window asks whether to make a new identity or to
//! restore one. Restoring writes the phrase's identity to the keyring; the start that follows
//! loads it like any other (and, finding no database, makes a new empty one for it). A profile
//! that has either is never touched: restoring over it would orphan or mix data.

use std::path::Path;

use crate::api::{ErrorCode, PhraseAnswer, RecoveryStatus, UiError};
use crate::identity::Identity;
use crate::keystore::{blocking as keyring, KeyringError, Keystore};
use crate::profile::{self, ProfileError};
use crate::recovery::{PhraseError, RecoverySeed};
use crate::storage::db::DB_FILE;

/// Why an identity could not be restored. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Phrase(#[from] PhraseError),
    #[error(
        "profile {profile:?} already has an identity or data, so nothing was restored into it"
    )]
    NotNew { profile: String },
    #[error("the data directory of profile {profile:?} belongs to identity {owner}, not to this phrase's {phrase}, so nothing was restored into it")]
    OtherOwner {
        profile: String,
        owner: String,
        phrase: String,
    },
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

impl RestoreError {
    /// The message and next step shown on the first-run screen.
    pub fn to_ui(&self) -> UiError {
        let (code, hint) = match self {
            RestoreError::Phrase(_) => (
                ErrorCode::InvalidInput,
                "Type the 24 words in the order you wrote them down, separated by spaces.",
            ),
            RestoreError::NotNew { .. } | RestoreError::OtherOwner { .. } => (
                ErrorCode::InvalidInput,
                "Restore into a new profile (start Kiyeovo with --profile NAME) or on a machine where Kiyeovo was never used.",
            ),
            RestoreError::Keyring(_) => (
                ErrorCode::KeyringUnavailable,
                "Kiyeovo keeps its keys in the system keyring: unlock it or start a Secret Service provider (GNOME Keyring or KeePassXC), then try again.",
            ),
            RestoreError::Profile(_) => (
                ErrorCode::DataDir,
                "Check that the data directory is writable, or pass another one with --data-dir.",
            ),
        };
        UiError {
            code,
            message: self.to_string(),
            hint: hint.to_string(),
        }
    }
}

/// Whether the profile has neither an identity in the keyring nor a database: its first start.
/// A file that cannot be checked counts as there (nothing is ever written over it).
pub async fn is_new(profile: &str, data_dir: Option<&Path>) -> Result<bool, RestoreError> {
    let dir = profile::data_dir(profile, data_dir)?;
    if dir.join(DB_FILE).try_exists().unwrap_or(true) {
        return Ok(false);
    }
    let store = Keystore::new(profile);
    let stored = keyring(move || store.load_identity().map(|i| i.is_some())).await;
    match stored {
        Ok(has) => Ok(!has),
        // A damaged entry is not "new": start-up reports it and overwrites nothing.
        Err(KeyringError::Corrupt { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes the identity of `phrase` to the keyring of a new profile and returns its peer id.
///
/// Holds the profile's lock from the check to the write, so no start of the same profile (a
/// second window, a second instance) can make an identity in between that this would then
/// overwrite. A `peer-id` file left from deleted data must name the phrase's identity: data of
/// another identity is never adopted.
pub async fn from_phrase(
    profile: &str,
    data_dir: Option<&Path>,
    phrase: &str,
) -> Result<String, RestoreError> {
    let seed = RecoverySeed::from_phrase(phrase)?;
    let dir = profile::data_dir(profile, data_dir)?;
    let _lock = profile::ProfileLock::acquire(profile, &dir)?;
    if !is_new(profile, data_dir).await? {
        return Err(RestoreError::NotNew {
            profile: profile.to_string(),
        });
    }
    let identity = Identity::from_recovery(seed);
    let peer_id = identity.peer_id().to_string();
    if let Some(owner) = crate::service::recorded_owner(&dir).filter(|o| *o != peer_id) {
        return Err(RestoreError::OtherOwner {
            profile: profile.to_string(),
            owner,
            phrase: peer_id,
        });
    }
    let store = Keystore::new(profile);
    keyring(move || store.store_identity(&identity)).await?;
    tracing::info!(%profile, %peer_id, "identity restored from a recovery phrase");
    Ok(peer_id)
}

/// The setting that ends the "write down your recovery phrase" reminder.
pub const SETTING_PHRASE_CONFIRMED: &str = "recovery_phrase_confirmed";

/// Where a profile's phrase stands, for the window.
pub fn status(identity: &Identity, confirmed: bool) -> RecoveryStatus {
    match (identity.recovery(), confirmed) {
        (None, _) => RecoveryStatus::NoPhrase,
        (Some(_), false) => RecoveryStatus::NotConfirmed,
        (Some(_), true) => RecoveryStatus::Confirmed,
    }
}

/// Why words typed back do not confirm the phrase was written down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("Type the {ASKED} words asked for, each once.")]
    Asked,
    #[error("Word {0} is not the word at that place. Look at what you wrote down, or show the phrase again and correct it.")]
    Wrong(u8),
}

/// Words asked back to confirm a phrase is written down.
pub const ASKED: usize = 3;

/// Whether the answers are [`ASKED`] different places of the phrase (1–24) with their words
/// (typed as [`RecoverySeed::from_phrase`] reads words: any case, spaces and dots ignored).
pub fn check_answers(seed: &RecoverySeed, answers: &[PhraseAnswer]) -> Result<(), CheckError> {
    let mut places: Vec<u8> = answers.iter().map(|a| a.position).collect();
    places.sort_unstable();
    places.dedup();
    if answers.len() != ASKED
        || places.len() != ASKED
        || places
            .iter()
            .any(|&p| p == 0 || usize::from(p) > crate::recovery::WORDS)
    {
        return Err(CheckError::Asked);
    }
    let words = seed.words();
    for a in answers {
        if crate::recovery::typed_word(&a.word) != words[usize::from(a.position) - 1] {
            return Err(CheckError::Wrong(a.position));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(position: u8, word: &str) -> PhraseAnswer {
        PhraseAnswer {
            position,
            word: word.into(),
        }
    }

    #[test]
    fn three_right_words_confirm_and_anything_else_says_why_not() {
        let seed = RecoverySeed::generate();
        let w = seed.words();
        let right = [
            answer(2, w[1]),
            answer(11, &w[10].to_uppercase()),
            answer(24, &format!(" {} ", w[23])),
        ];
        assert_eq!(check_answers(&seed, &right), Ok(()));
        let mut wrong = right.clone();
        wrong[1].word = if w[10] == "zoo" {
            "abandon".into()
        } else {
            "zoo".into()
        };
        assert_eq!(check_answers(&seed, &wrong), Err(CheckError::Wrong(11)));
        assert_eq!(check_answers(&seed, &right[..2]), Err(CheckError::Asked));
        let same_place = [answer(2, w[1]), answer(2, w[1]), answer(3, w[2])];
        assert_eq!(check_answers(&seed, &same_place), Err(CheckError::Asked));
        for out in [0, 25, 255] {
            let outside = [answer(1, w[0]), answer(2, w[1]), answer(out, "zoo")];
            assert_eq!(check_answers(&seed, &outside), Err(CheckError::Asked));
        }
    }

    #[test]
    fn status_follows_the_phrase_and_its_confirmation() {
        assert_eq!(
            status(&Identity::generate(), true),
            RecoveryStatus::NoPhrase
        );
        let id = Identity::new_with_phrase();
        assert_eq!(status(&id, false), RecoveryStatus::NotConfirmed);
        assert_eq!(status(&id, true), RecoveryStatus::Confirmed);
    }
}
