//! The conversation list on real profiles (issue 14): contacts and groups in one list, each with
//! its newest message, who wrote it, and what is unread; one entry re-read on its own.

use kiyeovo_core::conversations::{ConversationKind, ConversationView};
use kiyeovo_core::service::App;
use kiyeovo_tests::{bootstrap_node, group_of, wait_bodies, wait_connected, wait_stored_messages};

fn entry<'a>(list: &'a [ConversationView], id: &str) -> &'a ConversationView {
    list.iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} is not in the list: {list:#?}"))
}

/// The entry `app` shows for `id`, listed whole and read on its own: the two agree.
async fn both_ways(app: &App, kind: ConversationKind, id: &str) -> ConversationView {
    let listed = entry(&app.conversations().await.unwrap(), id).clone();
    let alone = app
        .conversation(kind, id)
        .await
        .unwrap()
        .expect("it exists");
    assert_eq!(listed, alone, "the list and the single entry agree");
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_and_groups_are_one_list_with_their_newest_message_and_unread_counts() {
    let (_boot, addr) = bootstrap_node().await;
    let (_profiles, apps, gid) = group_of("conv", 3, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    let (ben_id, cai_id) = (ben.peer_id().to_string(), cai.peer_id().to_string());
    ana.channel()
        .rename(&ben.peer_id(), "Benjamin")
        .await
        .unwrap();

    // Nothing written yet: every contact and the group, no previews.
    let list = ana.conversations().await.unwrap();
    assert_eq!(list.len(), 3, "Ben, Cai and the group: {list:#?}");
    assert!(list.iter().all(|c| c.last.is_none() && c.unread == 0));
    assert_eq!(entry(&list, &gid).kind, ConversationKind::Group);
    assert_eq!(entry(&list, &gid).title, "Everyone");
    assert_eq!(entry(&list, &ben_id).title, "Benjamin");

    // A 1:1 message from Ana, then a two-line group message from Ben.
    ana.channel()
        .send_chat(&cai.peer_id(), "lunch?")
        .await
        .unwrap();
    ben.chat().send(&gid, "chapter 3\ntonight").await.unwrap();
    wait_bodies(ana, &gid, &["chapter 3\ntonight"]).await;
    wait_stored_messages(cai, &ana.peer_id(), "lunch?", 1).await;

    let to_cai = both_ways(ana, ConversationKind::Contact, &cai_id).await;
    let last = to_cai.last.expect("a preview");
    assert_eq!(
        (
            last.sender_name.as_str(),
            last.outgoing,
            last.preview.as_str()
        ),
        ("You", true, "lunch?")
    );
    assert_eq!(to_cai.unread, 0, "our own message is not unread");

    let group = both_ways(ana, ConversationKind::Group, &gid).await;
    let last = group.last.clone().expect("a preview");
    assert_eq!(
        (
            last.sender_name.as_str(),
            last.outgoing,
            last.preview.as_str()
        ),
        ("Benjamin", false, "chapter 3 tonight"),
        "the sender by the name Ana gave him, on one line"
    );
    assert_eq!(group.unread, 1);
    assert_eq!(group.active_at, last.at);
    assert!(last.at <= kiyeovo_core::time::now_ms());

    // Cai sees Ana's message as unread, under Ana's name.
    let from_ana = both_ways(cai, ConversationKind::Contact, &ana.peer_id().to_string()).await;
    assert_eq!(from_ana.unread, 1);
    assert!(!from_ana.last.as_ref().unwrap().outgoing);

    // Read: the count drops. Gone: the entry is `None`, not an error.
    ana.chat().mark_read(&gid).await.unwrap();
    assert_eq!(
        both_ways(ana, ConversationKind::Group, &gid).await.unread,
        0
    );
    assert_eq!(
        ana.conversation(ConversationKind::Group, &"ab".repeat(16))
            .await
            .unwrap(),
        None
    );
    let stranger = kiyeovo_core::identity::Identity::generate().peer_id();
    assert_eq!(
        ana.conversation(ConversationKind::Contact, &stranger.to_string())
            .await
            .unwrap(),
        None
    );
    assert!(
        ana.conversation(ConversationKind::Contact, "not a peer id")
            .await
            .is_err(),
        "refused in words, not a panic"
    );
}

/// Search (issue 14): every conversation, case ignored, the newest first, each hit naming its
/// conversation, sender and message, with the match marked in a one-line snippet. Only what
/// this profile holds: bodies are sealed at rest and no plaintext index is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_messages_across_conversations_newest_first() {
    let (_boot, addr) = bootstrap_node().await;
    let (profiles, apps, gid) = group_of("search", 3, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    let (ben_id, cai_id) = (ben.peer_id().to_string(), cai.peer_id().to_string());
    ana.channel()
        .rename(&ben.peer_id(), "Benjamin")
        .await
        .unwrap();

    ana.channel()
        .send_chat(&cai.peer_id(), "Dinner at the LIGHTHOUSE on friday?")
        .await
        .unwrap();
    ben.chat()
        .send(&gid, "the lighthouse\nis closed, let us pick another place")
        .await
        .unwrap();
    ben.chat().send(&gid, "nothing to see here").await.unwrap();
    wait_bodies(
        ana,
        &gid,
        &[
            "the lighthouse\nis closed, let us pick another place",
            "nothing to see here",
        ],
    )
    .await;
    ana.channel()
        .send_chat(&ben.peer_id(), "ok, lighthouse some other time")
        .await
        .unwrap();

    let hits = ana.search("  Lighthouse ").await.unwrap();
    let found: Vec<(&str, &str, &str)> = hits
        .iter()
        .map(|h| {
            (
                h.conversation_id.as_str(),
                h.sender_name.as_str(),
                h.snippet.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (ben_id.as_str(), "You", "ok, lighthouse some other time"),
            (
                gid.as_str(),
                "Benjamin",
                "the lighthouse is closed, let us pick another place"
            ),
            (
                cai_id.as_str(),
                "You",
                "Dinner at the LIGHTHOUSE on friday?"
            ),
        ],
        "all three, the newest first: {hits:#?}"
    );
    let group_hit = &hits[1];
    assert_eq!(group_hit.kind, ConversationKind::Group);
    assert_eq!(
        group_hit.sender_peer_id, ben_id,
        "a group message is named by its sender too"
    );
    assert_eq!(hits[0].sender_peer_id, ana.peer_id().to_string());
    assert_eq!(group_hit.title, "Everyone");
    let marked: String = group_hit
        .snippet
        .chars()
        .skip(group_hit.mark_start as usize)
        .take((group_hit.mark_end - group_hit.mark_start) as usize)
        .collect();
    assert_eq!(marked, "lighthouse");
    // The hit names the message the group chat shows, to jump to it.
    let chat = ana.chat().chat(&gid).await.unwrap();
    assert!(chat
        .messages
        .iter()
        .any(|m| m.msg_id == group_hit.msg_id && m.body.starts_with("the lighthouse")));

    assert!(ana.search("sunflower").await.unwrap().is_empty());
    assert!(
        ana.search("   ").await.unwrap().is_empty(),
        "a blank query finds nothing"
    );
    assert!(
        ana.search(&"x".repeat(201)).await.is_err(),
        "refused in words"
    );

    // The database holds no body in the clear, so the search opened them: the word is not in
    // the file.
    let db = std::fs::read(profiles[0].db_path()).unwrap();
    assert!(
        !db.windows(b"lighthouse".len())
            .any(|w| w.eq_ignore_ascii_case(b"lighthouse")),
        "no plaintext in the database file"
    );
}

async fn bodies(app: &App, peer: &libp2p::PeerId) -> Vec<String> {
    let all = app.channel().messages(peer).await.unwrap();
    all.into_iter().map(|m| m.body).collect()
}

/// "Delete for me" (issue 14): a 1:1 and a group message deleted here are no longer shown,
/// counted, previewed, found or relayed; reading the sender's bucket again does not bring them
/// back; the sender keeps theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_deleted_for_me_stays_deleted_and_the_others_keep_theirs() {
    let (_boot, addr) = bootstrap_node().await;
    let (_profiles, apps, gid) = group_of("delete", 2, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben) = (&apps[0], &apps[1]);
    let (ana_id, ben_id) = (ana.peer_id(), ben.peer_id());

    ben.channel().send_chat(&ana_id, "keep this").await.unwrap();
    ben.channel()
        .send_chat(&ana_id, "the door code is 4711")
        .await
        .unwrap();
    wait_stored_messages(ana, &ben_id, "the door code", 1).await;
    wait_stored_messages(ana, &ben_id, "keep this", 1).await;
    ben.chat().send(&gid, "group secret").await.unwrap();
    ben.chat().send(&gid, "group hello").await.unwrap();
    wait_bodies(ana, &gid, &["group secret", "group hello"]).await;

    // 1:1: deleted, then gone from the chat, the preview, the unread count and search.
    let secret = ana
        .channel()
        .messages(&ben_id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.body.starts_with("the door code"))
        .unwrap();
    ana.channel()
        .delete_message(&ben_id, &secret.msg_id)
        .await
        .unwrap();
    assert_eq!(bodies(ana, &ben_id).await, ["keep this"]);
    let entry = ana
        .conversation(ConversationKind::Contact, &ben_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.last.unwrap().preview, "keep this");
    assert_eq!(
        entry.unread, 1,
        "the deleted one no longer counts as unread"
    );
    assert!(ana.search("4711").await.unwrap().is_empty());
    // Deleting it again, or an id that is not there, is refused in words.
    let again = ana.channel().delete_message(&ben_id, &secret.msg_id).await;
    assert!(
        matches!(
            again,
            Err(kiyeovo_core::pairwise::channel::ChannelError::UnknownMessage)
        ),
        "{again:?}"
    );
    assert!(ana
        .channel()
        .delete_message(&ben_id, "not hex")
        .await
        .is_err());

    // Group: the same, by sender and id; nothing left to relay to a member who asks.
    let view = ana.chat().chat(&gid).await.unwrap();
    let g = view
        .messages
        .iter()
        .find(|m| m.body == "group secret")
        .unwrap()
        .clone();
    ana.chat()
        .delete_message(&gid, &g.sender_peer_id, &g.msg_id)
        .await
        .unwrap();
    let view = ana.chat().chat(&gid).await.unwrap();
    let left: Vec<&str> = view.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(left, ["group hello"]);
    assert!(ana.search("group secret").await.unwrap().is_empty());
    let relay = kiyeovo_core::group::chat_store::envelopes(
        ana.database().pool(),
        &gid,
        g.epoch,
        &g.sender_peer_id,
        &[g.seq],
    )
    .await
    .unwrap();
    assert!(relay.is_empty(), "its envelope is gone too");

    // Reading Ben's buckets again brings nothing back (the inbox knows those numbers).
    ana.channel().poll_all().await;
    ana.chat().poll_all().await;
    assert_eq!(bodies(ana, &ben_id).await, ["keep this"]);
    let view = ana.chat().chat(&gid).await.unwrap();
    assert_eq!(view.messages.len(), 1);

    // Ben keeps his.
    assert_eq!(
        bodies(ben, &ana_id).await,
        ["keep this", "the door code is 4711"]
    );
    assert_eq!(ben.chat().chat(&gid).await.unwrap().messages.len(), 2);
}

/// One of ours still being sent cannot be deleted (its row is what would send it again); once
/// stored it can; a second time it is not there. On a real database file.
#[tokio::test]
async fn our_own_message_is_deleted_only_once_it_went_out() {
    use kiyeovo_core::api::MessageState;
    use kiyeovo_core::contacts::{card::ContactCard, store};
    let dir = tempfile::tempdir().unwrap();
    let key = [9u8; 32];
    let db = kiyeovo_core::storage::Database::open(&dir.path().join("kiyeovo.db"), &key)
        .await
        .unwrap();
    let them = kiyeovo_core::identity::Identity::generate();
    let peer = them.peer_id();
    store::upsert_card(
        db.pool(),
        &ContactCard::new(&them, "Ben", vec![], 1),
        &peer,
        1,
    )
    .await
    .unwrap();
    let id = kiyeovo_core::pairwise::envelope::new_msg_id();
    let mut tx = db.pool().begin().await.unwrap();
    store::insert_message(
        &mut tx,
        &key,
        &peer,
        &id,
        true,
        1,
        1,
        "hi",
        None,
        MessageState::Pending,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        store::delete_message(db.pool(), &peer, &id).await.unwrap(),
        store::Deleted::StillSending
    );
    store::mark_stored_up_to(db.pool(), &peer, 1).await.unwrap();
    assert_eq!(
        store::delete_message(db.pool(), &peer, &id).await.unwrap(),
        store::Deleted::Deleted
    );
    assert_eq!(
        store::delete_message(db.pool(), &peer, &id).await.unwrap(),
        store::Deleted::NotFound
    );
    assert!(store::messages(db.pool(), &key, &peer, &peer, "Ben")
        .await
        .unwrap()
        .is_empty());
}

/// `app`'s view of the message of group `gid` that says `body`.
async fn group_message(app: &App, gid: &str, body: &str) -> kiyeovo_core::api::GroupMessageView {
    app.chat()
        .chat(gid)
        .await
        .unwrap()
        .messages
        .into_iter()
        .find(|m| m.body == body)
        .unwrap_or_else(|| panic!("{body:?} is not in the group"))
}

/// Reply (issue 14): a reply shows the message it answers, under that message's author, in a
/// 1:1 chat and in a group, for the one who wrote it and the others. The quote is read from the
/// answered message as each profile holds it: deleted for me, it shows as not available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_shows_the_message_it_answers_under_its_author() {
    use kiyeovo_core::api::{QuoteView, ReplyTarget};
    let (_boot, addr) = bootstrap_node().await;
    let (_profiles, apps, gid) = group_of("reply", 3, &addr).await;
    wait_connected(&apps).await;
    let (ana, ben, cai) = (&apps[0], &apps[1], &apps[2]);
    let (ana_id, ben_id, cai_id) = (ana.peer_id(), ben.peer_id(), cai.peer_id());
    ana.channel().rename(&ben_id, "Benjamin").await.unwrap();
    let quote = |q: &Option<QuoteView>| {
        let q = q.as_ref().expect("a reply");
        (q.author_name.clone(), q.outgoing, q.body.clone())
    };

    // 1:1: Ana asks, Cai answers her question.
    let asked = ana
        .channel()
        .send_chat(&cai_id, "lunch at one?")
        .await
        .unwrap();
    wait_stored_messages(cai, &ana_id, "lunch at one?", 1).await;
    let target = ReplyTarget {
        msg_id: asked.msg_id.clone(),
        author_peer_id: ana_id.to_string(),
    };
    let sent = cai
        .channel()
        .send_reply(&ana_id, "yes, see you there", Some(&target))
        .await
        .unwrap();
    let (name, outgoing, body) = quote(&sent.reply_to);
    assert_eq!((outgoing, body.as_deref()), (false, Some("lunch at one?")));
    let shown = cai.channel().contacts().await.unwrap();
    let ana_name = &shown
        .iter()
        .find(|c| c.peer_id == ana_id.to_string())
        .unwrap()
        .display_name;
    assert_eq!(&name, ana_name, "Ana under the name Cai knows her by");
    wait_stored_messages(ana, &cai_id, "yes, see you there", 1).await;
    let at_ana = ana.channel().messages(&cai_id).await.unwrap();
    let reply = at_ana
        .iter()
        .find(|m| m.body == "yes, see you there")
        .unwrap();
    assert_eq!(
        quote(&reply.reply_to),
        ("You".into(), true, Some("lunch at one?".into()))
    );
    assert_eq!(reply.reply_to.as_ref().unwrap().msg_id, asked.msg_id);
    assert!(at_ana
        .iter()
        .find(|m| m.body == "lunch at one?")
        .unwrap()
        .reply_to
        .is_none());

    // Group: Ben writes, Cai answers him; Ana sees Ben under the name she gave him.
    ben.chat().send(&gid, "chapter 3 tonight").await.unwrap();
    wait_bodies(cai, &gid, &["chapter 3 tonight"]).await;
    let chapter = cai
        .chat()
        .chat(&gid)
        .await
        .unwrap()
        .messages
        .into_iter()
        .find(|m| m.body == "chapter 3 tonight")
        .unwrap();
    let target = ReplyTarget {
        msg_id: chapter.msg_id.clone(),
        author_peer_id: ben_id.to_string(),
    };
    let sent = cai
        .chat()
        .send_reply(&gid, "I will bring the tea", Some(&target))
        .await
        .unwrap();
    assert_eq!(
        quote(&sent.reply_to).2.as_deref(),
        Some("chapter 3 tonight")
    );
    wait_bodies(ana, &gid, &["chapter 3 tonight", "I will bring the tea"]).await;
    wait_bodies(ben, &gid, &["chapter 3 tonight", "I will bring the tea"]).await;
    const TEA: &str = "I will bring the tea";
    assert_eq!(
        quote(&group_message(ana, &gid, TEA).await.reply_to),
        ("Benjamin".into(), false, Some("chapter 3 tonight".into()))
    );
    assert_eq!(
        quote(&group_message(ben, &gid, TEA).await.reply_to),
        ("You".into(), true, Some("chapter 3 tonight".into()))
    );

    // Ana deletes Ben's message for herself: the reply stays, its quote is no longer there.
    let at_ana = group_message(ana, &gid, TEA).await;
    ana.chat()
        .delete_message(&gid, &ben_id.to_string(), &at_ana.reply_to.unwrap().msg_id)
        .await
        .unwrap();
    assert_eq!(
        quote(&group_message(ana, &gid, TEA).await.reply_to),
        ("Benjamin".into(), false, None)
    );

    // Only a message of the conversation can be answered, under its real author.
    let elsewhere = ReplyTarget {
        msg_id: asked.msg_id.clone(),
        author_peer_id: ana_id.to_string(),
    };
    assert!(
        matches!(
            cai.chat().send_reply(&gid, "x", Some(&elsewhere)).await,
            Err(kiyeovo_core::group::chat::ChatError::UnknownMessage)
        ),
        "a 1:1 message is not in the group"
    );
    let wrong_author = ReplyTarget {
        msg_id: asked.msg_id.clone(),
        author_peer_id: ben_id.to_string(),
    };
    assert!(
        matches!(
            cai.channel()
                .send_reply(&ana_id, "x", Some(&wrong_author))
                .await,
            Err(kiyeovo_core::pairwise::channel::ChannelError::UnknownMessage)
        ),
        "Ben is not in Cai's chat with Ana"
    );
    let not_hers = ReplyTarget {
        msg_id: asked.msg_id,
        author_peer_id: cai_id.to_string(),
    };
    assert!(
        cai.channel()
            .send_reply(&ana_id, "x", Some(&not_hers))
            .await
            .is_err(),
        "Cai did not write Ana's message"
    );
}
