//! Search across every conversation, on this device only. Message bodies are sealed at rest
//! (`storage::seal`), and so that nothing of them lies in the database in the clear no index
//! is kept: a search opens each stored body and looks in it. A profile holds at most thousands
//! of messages (each contact and group member's bucket keeps 100 while away), which opens in
//! milliseconds (see README, Benchmarks).
//!
//! Matching ignores case (Unicode lower case, character by character) and treats any run of
//! white space, new lines included, as one space, both in the query and in the body.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::conversations::{sender_name, service_err, ConversationKind, PREVIEW_CHARS};
use crate::error::ServiceError;
use crate::service::App;

/// A longer query is refused: nobody types more, and each body is compared with it.
pub const MAX_QUERY_CHARS: usize = 200;
/// At most this many results, the newest first.
pub const MAX_HITS: usize = 50;
/// How much of the body is shown before the match in a result.
const CONTEXT_BEFORE: usize = 30;

/// One message that matches, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SearchHit {
    pub kind: ConversationKind,
    /// The contact's peer id or the group's id (hex): the conversation to open.
    pub conversation_id: String,
    /// The contact's or the group's name.
    pub title: String,
    /// Hex of the message id and its sender's peer id, to jump to it in the conversation (a
    /// group message is known by both: ids are chosen by their senders).
    pub msg_id: String,
    pub sender_peer_id: String,
    /// "You", the contact's name, or the member's name.
    pub sender_name: String,
    pub outgoing: bool,
    /// One line of the body around the first match (at most [`PREVIEW_CHARS`] characters and
    /// "…" where it is cut), with the match at `mark_start..mark_end` (in characters).
    pub snippet: String,
    pub mark_start: u32,
    pub mark_end: u32,
    /// When it was sent (ms, the sender's clock capped at now).
    #[ts(type = "number")]
    pub at: u64,
}

/// What a query looks for: lower case, white space collapsed. `None` for a blank query.
pub fn needle(query: &str) -> Result<Option<Vec<char>>, ServiceError> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ServiceError::InvalidInput(format!(
            "Search for at most {MAX_QUERY_CHARS} characters."
        )));
    }
    let folded = fold(query);
    Ok((!folded.is_empty()).then(|| folded.into_iter().map(|(c, _)| c).collect()))
}

/// The text as matching sees it: each character lower-cased, white-space runs as one space,
/// none at the ends; each with the index of the character of `one_line(text)` it came from.
fn fold(text: &str) -> Vec<(char, usize)> {
    let mut out = Vec::new();
    for (i, c) in one_line(text).chars().enumerate() {
        out.extend(c.to_lowercase().map(|l| (l, i)));
    }
    out
}

/// The body on one line: white-space runs as one space, none at the ends.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `needle` (collected into a string) occurs in `body` as [`find`] sees them, without
/// working out where: every stored body goes through this, so it builds one folded string and
/// lets `str::contains` look.
pub fn contains(body: &str, needle: &str) -> bool {
    let mut folded = String::with_capacity(body.len());
    for word in body.split_whitespace() {
        if !folded.is_empty() {
            folded.push(' ');
        }
        folded.extend(word.chars().flat_map(char::to_lowercase));
    }
    folded.contains(needle)
}

/// Where `needle` first occurs in `body`, in characters of `one_line(body)`: `(start, end)`.
pub fn find(body: &str, needle: &[char]) -> Option<(usize, usize)> {
    let folded = fold(body);
    if needle.is_empty() || folded.len() < needle.len() {
        return None;
    }
    let at = folded
        .windows(needle.len())
        .position(|w| w.iter().map(|(c, _)| *c).eq(needle.iter().copied()))?;
    Some((folded[at].1, folded[at + needle.len() - 1].1 + 1))
}

/// One line of `body` around the match at `start..end`: the snippet and the match within it.
pub fn snippet(body: &str, (start, end): (usize, usize)) -> (String, u32, u32) {
    let line: Vec<char> = one_line(body).chars().collect();
    let from = start.saturating_sub(CONTEXT_BEFORE);
    let to = line
        .len()
        .min(from + PREVIEW_CHARS)
        .max(end.min(line.len()));
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    let offset = out.chars().count();
    out.extend(&line[from..to]);
    if to < line.len() {
        out.push('…');
    }
    (
        out,
        (offset + start - from) as u32,
        (offset + end.min(to) - from) as u32,
    )
}

impl App {
    /// Every stored message, 1:1 and group, that contains `query` (case ignored), the newest
    /// first, at most [`MAX_HITS`].
    pub async fn search(&self, query: &str) -> Result<Vec<SearchHit>, ServiceError> {
        let Some(needle) = needle(query)? else {
            return Ok(Vec::new());
        };
        let now = crate::time::now_ms();
        let pool = self.database().pool();
        let key = &self.storage_key;
        let mut hits = Vec::new();
        let needle_text: String = needle.iter().collect();
        let matches = |body: &str| contains(body, &needle_text);
        for c in self.channel().contacts().await.map_err(service_err)? {
            let Ok(peer) = c.peer_id.parse::<PeerId>() else {
                continue;
            };
            for (id, outgoing, body, at) in
                crate::contacts::store::search(pool, key, &peer, MAX_HITS, matches)
                    .await
                    .map_err(ServiceError::from)?
            {
                let (name, sender) = if outgoing {
                    ("You".into(), self.peer_id().to_string())
                } else {
                    (c.display_name.clone(), c.peer_id.clone())
                };
                hits.push(hit(
                    ConversationKind::Contact,
                    &c.peer_id,
                    &c.display_name,
                    (id.to_hex(), sender, name),
                    outgoing,
                    &body,
                    &needle,
                    at.min(now),
                ));
            }
        }
        for g in self.groups().list().await.map_err(service_err)? {
            for (id, sender, outgoing, body, at) in
                crate::group::chat_store::search(pool, key, &g.group_id, MAX_HITS, matches)
                    .await
                    .map_err(ServiceError::from)?
            {
                let name = sender_name(&g, &sender, outgoing);
                hits.push(hit(
                    ConversationKind::Group,
                    &g.group_id,
                    &g.name,
                    (crate::ids::hex(id), sender, name),
                    outgoing,
                    &body,
                    &needle,
                    at.min(now),
                ));
            }
        }
        hits.sort_by_key(|h| std::cmp::Reverse(h.at));
        hits.truncate(MAX_HITS);
        Ok(hits)
    }
}

#[allow(clippy::too_many_arguments)]
fn hit(
    kind: ConversationKind,
    conversation_id: &str,
    title: &str,
    (msg_id, sender_peer_id, sender_name): (String, String, String),
    outgoing: bool,
    body: &str,
    needle: &[char],
    at: u64,
) -> SearchHit {
    let found = find(body, needle).unwrap_or((0, 0));
    let (snippet, mark_start, mark_end) = snippet(body, found);
    SearchHit {
        kind,
        conversation_id: conversation_id.to_string(),
        title: title.to_string(),
        msg_id,
        sender_peer_id,
        sender_name,
        outgoing,
        snippet,
        mark_start,
        mark_end,
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(q: &str) -> Vec<char> {
        needle(q).unwrap().unwrap()
    }

    #[test]
    fn a_query_is_matched_in_any_case_across_line_breaks() {
        assert_eq!(find("See you at EIGHT", &n("eight")), Some((11, 16)));
        assert_eq!(find("see you\n\n at  eight", &n("YOU AT")), Some((4, 10)));
        assert_eq!(
            find("Straße", &n("STRASSE")),
            None,
            "no folding beyond lower case"
        );
        assert_eq!(find("ÉCOLE", &n("école")), Some((0, 5)));
        assert_eq!(find("short", &n("longer than it")), None);
        assert_eq!(
            needle("   \n ").unwrap(),
            None,
            "a blank query finds nothing"
        );
        assert!(needle(&"x".repeat(MAX_QUERY_CHARS)).is_ok());
        assert!(needle(&"x".repeat(MAX_QUERY_CHARS + 1)).is_err());
    }

    #[test]
    fn a_snippet_is_one_line_around_the_match_with_the_match_marked() {
        let body = format!("{} the word {}", "a ".repeat(100), "b ".repeat(100));
        let at = find(&body, &n("word")).unwrap();
        let (s, from, to) = snippet(&body, at);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        let chars: Vec<char> = s.chars().collect();
        assert_eq!(
            chars[from as usize..to as usize].iter().collect::<String>(),
            "word"
        );
        assert!(s.chars().count() <= PREVIEW_CHARS + 2);
        let (short, from, to) = snippet("hi\nthere", find("hi\nthere", &n("there")).unwrap());
        assert_eq!((short.as_str(), from, to), ("hi there", 3, 8));
    }

    proptest! {
        /// Whatever the body and query, the marked part of the snippet is the match as the body
        /// writes it, the quick check agrees with it, and nothing panics (multi-character lower
        /// cases, long bodies, cuts).
        #[test]
        fn the_mark_always_covers_the_match(body in "\\PC{0,300}", q in "\\PC{1,12}") {
            let Ok(Some(needle)) = needle(&q) else { return Ok(()) };
            let text: String = needle.iter().collect();
            prop_assert_eq!(contains(&body, &text), find(&body, &needle).is_some());
            if let Some(at) = find(&body, &needle) {
                let (s, from, to) = snippet(&body, at);
                let chars: Vec<char> = s.chars().collect();
                prop_assert!(from <= to && (to as usize) <= chars.len());
                let marked: String = chars[from as usize..to as usize].iter().collect();
                prop_assert!(find(&marked, &needle).is_some(), "{marked:?} in {s:?}");
            }
        }
    }
}
