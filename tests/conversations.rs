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
