//! The cases. Each gets a fresh, empty store; the store traits are used through
//! `Arc<dyn Store>`, the export/import side through [`Transfer`].
//!
//! Shared by the `conformance` test binary (SQLite) and the `postgres` one (PostgreSQL).

/// Calls `$backend!` with the name of every case; each backend's binary makes one test
/// per case.
macro_rules! every_case {
    ($backend:ident) => {
        $backend!(
            create_and_get,
            timestamps_keep_nanoseconds,
            custom_id_maps_to_one_live_identity,
            custom_id_is_freed_by_delete,
            concurrent_creates_with_one_custom_id_agree,
            record_tokens_issued_on_live_deleted_and_missing,
            record_tokens_issued_in_a_large_batch,
            revoke_bumps_the_generation,
            concurrent_revokes_are_all_counted,
            concurrent_mixed_writes_each_get_their_answer,
            delete_is_idempotent_and_leaves_a_tombstone,
            count_includes_tombstones,
            list_pages_newest_first_with_tombstones,
            no_resource_before_init,
            racing_inits_agree_on_one_resource,
            signing_keys_are_added_once,
            keys_version_grows_with_every_key_change,
            ping_answers,
            only_a_database_of_several_nodes_is_shared,
            teams_extension_assignments,
            entra_assignments,
            export_pages_through_every_identity,
            import_is_idempotent_and_never_revives_or_unrevokes,
            import_resource_refuses_another_resource,
            schema_version_is_current,
        );
    };
}

use std::collections::HashSet;

use acs_identity_core::id::UserId;
use acs_identity_core::store::{
    EntraAssignment, IdentityRecord, NewIdentity, Store, TeamsExtensionAssignment,
};
use acs_identity_store::{AnyStore, ImportConflict, Transfer};

use crate::fixtures::{at, resource, signing_key};

fn new_identity(custom_id: Option<&str>, created: i64) -> NewIdentity {
    NewIdentity {
        user: UserId::generate(),
        custom_id: custom_id.map(str::to_owned),
        created_at: at(created),
        token_issued_at: None,
    }
}

async fn create(store: &dyn Store, custom_id: Option<&str>) -> IdentityRecord {
    store.create_identity(new_identity(custom_id, 0)).await.expect("create").record
}

pub(crate) async fn create_and_get(any: AnyStore) {
    let store = any.shared();
    let new = new_identity(None, 1);
    let created = store.create_identity(new.clone()).await.expect("create");
    assert!(created.created);
    let expected = IdentityRecord {
        user: new.user,
        custom_id: None,
        created_at: at(1),
        deleted_at: None,
        generation: 0,
        last_token_issued_at: None,
    };
    assert_eq!(created.record, expected);
    assert_eq!(store.get_identity(new.user).await.unwrap(), Some(expected));
    assert_eq!(store.get_identity(UserId::generate()).await.unwrap(), None);

    // Created with a token in the same request.
    let with_token = NewIdentity { token_issued_at: Some(at(2)), ..new_identity(None, 2) };
    let created = store.create_identity(with_token.clone()).await.unwrap();
    assert_eq!(created.record.last_token_issued_at, Some(at(2)));
    let read = store.get_identity(with_token.user).await.unwrap().unwrap();
    assert_eq!(read.last_token_issued_at, Some(at(2)));
    assert!(read.is_live());
}

pub(crate) async fn timestamps_keep_nanoseconds(any: AnyStore) {
    let store = any.shared();
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_712_345_678_987_654_321).unwrap();
    let new = NewIdentity { created_at: t, token_issued_at: Some(t), ..new_identity(None, 0) };
    store.create_identity(new.clone()).await.unwrap();
    let read = store.get_identity(new.user).await.unwrap().unwrap();
    assert_eq!(read.created_at, t);
    assert_eq!(read.last_token_issued_at, Some(t));
    let later = t + time::Duration::nanoseconds(1);
    store.delete_identity(new.user, later).await.unwrap();
    assert_eq!(store.get_identity(new.user).await.unwrap().unwrap().deleted_at, Some(later));
}

pub(crate) async fn custom_id_maps_to_one_live_identity(any: AnyStore) {
    let store = any.shared();
    let first = store.create_identity(new_identity(Some("alice"), 1)).await.unwrap();
    assert!(first.created);
    assert_eq!(first.record.custom_id.as_deref(), Some("alice"));

    // Same custom id: the existing identity, with the token time recorded on it.
    let again = NewIdentity { token_issued_at: Some(at(5)), ..new_identity(Some("alice"), 5) };
    let second = store.create_identity(again.clone()).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.record.user, first.record.user);
    assert_eq!(second.record.created_at, at(1));
    assert_eq!(second.record.last_token_issued_at, Some(at(5)));
    assert_eq!(store.get_identity(again.user).await.unwrap(), None, "no second identity");
    let read = store.get_identity(first.record.user).await.unwrap().unwrap();
    assert_eq!(read.last_token_issued_at, Some(at(5)));

    // Without a token the existing identity's token time is kept.
    let third = store.create_identity(new_identity(Some("alice"), 6)).await.unwrap();
    assert!(!third.created);
    assert_eq!(third.record.last_token_issued_at, Some(at(5)));

    // Another custom id, and none at all, are separate identities.
    let bob = store.create_identity(new_identity(Some("bob"), 7)).await.unwrap();
    assert!(bob.created);
    assert_ne!(bob.record.user, first.record.user);
    assert_eq!(store.count_identities().await.unwrap(), 2);
}

pub(crate) async fn custom_id_is_freed_by_delete(any: AnyStore) {
    let store = any.shared();
    let first = create(store.as_ref(), Some("carol")).await;
    store.delete_identity(first.user, at(10)).await.unwrap();
    let next = store.create_identity(new_identity(Some("carol"), 11)).await.unwrap();
    assert!(next.created, "a deleted identity's custom id maps to a new identity");
    assert_ne!(next.record.user, first.user);
    // The tombstone stays deleted: its id never comes back to life.
    let old = store.get_identity(first.user).await.unwrap().unwrap();
    assert_eq!(old.deleted_at, Some(at(10)));
    let again = store.create_identity(new_identity(Some("carol"), 12)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.record.user, next.record.user);
}

pub(crate) async fn concurrent_creates_with_one_custom_id_agree(any: AnyStore) {
    let store = any.shared();
    for round in 0..5 {
        let custom = format!("racer-{round}");
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let store = store.clone();
            let custom = custom.clone();
            tasks.push(tokio::spawn(async move {
                store.create_identity(new_identity(Some(&custom), 0)).await.expect("create")
            }));
        }
        let mut users = HashSet::new();
        let mut created = 0;
        for t in tasks {
            let r = t.await.unwrap();
            users.insert(r.record.user);
            created += usize::from(r.created);
        }
        assert_eq!(users.len(), 1, "round {round}: all creates return one identity");
        assert_eq!(created, 1, "round {round}: exactly one create made it");
    }
    assert_eq!(store.count_identities().await.unwrap(), 5);
}

pub(crate) async fn record_tokens_issued_on_live_deleted_and_missing(any: AnyStore) {
    let store = any.shared();
    let live = create(store.as_ref(), None).await;
    let other = create(store.as_ref(), None).await;
    assert_eq!(store.record_tokens_issued(&[]).await.unwrap(), 0);
    let n = store.record_tokens_issued(&[(live.user, at(3)), (other.user, at(5))]).await.unwrap();
    assert_eq!(n, 2);
    let after = store.get_identity(live.user).await.unwrap().unwrap();
    assert_eq!(after.last_token_issued_at, Some(at(3)));
    assert!(after.is_live());
    // The later time wins, whatever order the times arrive in, also within one call.
    store.record_tokens_issued(&[(live.user, at(4)), (live.user, at(2))]).await.unwrap();
    store.record_tokens_issued(&[(other.user, at(1))]).await.unwrap();
    assert_eq!(
        store.get_identity(live.user).await.unwrap().unwrap().last_token_issued_at,
        Some(at(4))
    );
    assert_eq!(
        store.get_identity(other.user).await.unwrap().unwrap().last_token_issued_at,
        Some(at(5))
    );

    store.delete_identity(live.user, at(5)).await.unwrap();
    let n = store
        .record_tokens_issued(&[(live.user, at(6)), (UserId::generate(), at(7))])
        .await
        .unwrap();
    assert_eq!(n, 0, "deleted and missing identities are skipped");
    let deleted = store.get_identity(live.user).await.unwrap().unwrap();
    assert!(!deleted.is_live());
    assert_eq!(deleted.last_token_issued_at, Some(at(4)), "unchanged once deleted");
    assert_eq!(deleted.generation, 0, "recording token times never revokes");
}

/// A batch larger than one statement's worth of identities is recorded whole.
pub(crate) async fn record_tokens_issued_in_a_large_batch(any: AnyStore) {
    let store = any.shared();
    let mut marks = Vec::new();
    for i in 0..5_000i64 {
        marks.push((UserId::generate(), at(i)));
    }
    let known = create(store.as_ref(), None).await;
    marks.push((known.user, at(9)));
    assert_eq!(store.record_tokens_issued(&marks).await.unwrap(), 1);
    assert_eq!(
        store.get_identity(known.user).await.unwrap().unwrap().last_token_issued_at,
        Some(at(9))
    );
}

pub(crate) async fn revoke_bumps_the_generation(any: AnyStore) {
    let store = any.shared();
    let user = create(store.as_ref(), None).await.user;
    assert_eq!(store.revoke_tokens(user).await.unwrap().unwrap().generation, 1);
    assert_eq!(store.revoke_tokens(user).await.unwrap().unwrap().generation, 2);
    assert_eq!(store.get_identity(user).await.unwrap().unwrap().generation, 2);
    // Recording token times does not touch the generation.
    store.record_tokens_issued(&[(user, at(1))]).await.unwrap();
    assert_eq!(store.get_identity(user).await.unwrap().unwrap().generation, 2);

    store.delete_identity(user, at(2)).await.unwrap();
    let deleted = store.revoke_tokens(user).await.unwrap().unwrap();
    assert!(!deleted.is_live());
    assert_eq!(deleted.generation, 2, "a deleted identity is not revoked again");
    assert_eq!(store.revoke_tokens(UserId::generate()).await.unwrap(), None);
}

pub(crate) async fn concurrent_revokes_are_all_counted(any: AnyStore) {
    let store = any.shared();
    let user = create(store.as_ref(), None).await.user;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.revoke_tokens(user).await.unwrap().unwrap().generation
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>(), "each revoke saw its own generation");
    assert_eq!(store.get_identity(user).await.unwrap().unwrap().generation, 20);
}

/// Many writes in flight at once (the SQLite writer commits them in batches, one statement
/// per run of one kind): every answer is the one its operation alone would get.
pub(crate) async fn concurrent_mixed_writes_each_get_their_answer(any: AnyStore) {
    let store = any.shared();
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let created = store.create_identity(new_identity(None, i)).await.unwrap();
            assert!(created.created);
            created.record.user
        }));
    }
    let mut users = Vec::new();
    for t in tasks {
        users.push(t.await.unwrap());
    }
    let (doomed, kept) = users.split_at(10);
    let mut tasks = Vec::new();
    for (i, user) in users.iter().copied().enumerate() {
        let store = store.clone();
        let deleting = i < 10;
        tasks.push(tokio::spawn(async move {
            let marked = store.record_tokens_issued(&[(user, at(1_000 + i as i64))]).await;
            assert_eq!(marked.unwrap(), 1, "a known identity");
            let missing = store.record_tokens_issued(&[(UserId::generate(), at(5))]).await;
            assert_eq!(missing.unwrap(), 0);
            if deleting {
                let deleted = store.delete_identity(user, at(2_000)).await.unwrap().unwrap();
                assert_eq!((deleted.user, deleted.deleted_at), (user, Some(at(2_000))));
                store.record_tokens_issued(&[(user, at(3_000))]).await.unwrap();
                let after = store.get_identity(user).await.unwrap().unwrap();
                assert!(!after.is_live(), "a deleted identity stays deleted");
                assert_eq!(after.last_token_issued_at, Some(at(1_000 + i as i64)));
            } else {
                let revoked = store.revoke_tokens(user).await.unwrap().unwrap();
                assert_eq!((revoked.user, revoked.generation), (user, 1));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for user in doomed {
        let record = store.get_identity(*user).await.unwrap().unwrap();
        assert_eq!((record.deleted_at, record.generation), (Some(at(2_000)), 0));
    }
    for user in kept {
        let record = store.get_identity(*user).await.unwrap().unwrap();
        assert!(record.is_live());
        assert_eq!(record.generation, 1);
        assert!(record.last_token_issued_at.is_some_and(|t| t >= at(1_000)));
    }
}

pub(crate) async fn delete_is_idempotent_and_leaves_a_tombstone(any: AnyStore) {
    let store = any.shared();
    let record = create(store.as_ref(), Some("dave")).await;
    store.revoke_tokens(record.user).await.unwrap();
    let deleted = store.delete_identity(record.user, at(20)).await.unwrap().unwrap();
    assert_eq!(deleted.deleted_at, Some(at(20)));
    assert_eq!(deleted.generation, 1);
    let again = store.delete_identity(record.user, at(30)).await.unwrap().unwrap();
    assert_eq!(again.deleted_at, Some(at(20)), "the first deletion time stays");
    let read = store.get_identity(record.user).await.unwrap().unwrap();
    assert_eq!(read, again);
    assert_eq!(read.custom_id.as_deref(), Some("dave"));
    assert_eq!(store.delete_identity(UserId::generate(), at(40)).await.unwrap(), None);
}

pub(crate) async fn count_includes_tombstones(any: AnyStore) {
    let store = any.shared();
    assert_eq!(store.count_identities().await.unwrap(), 0);
    let mut users = Vec::new();
    for i in 0..7 {
        users.push(create(store.as_ref(), if i % 2 == 0 { Some("x") } else { None }).await);
    }
    // Custom id "x" maps to one identity: 1 + 3 others.
    assert_eq!(store.count_identities().await.unwrap(), 4);
    store.delete_identity(users[1].user, at(1)).await.unwrap();
    assert_eq!(store.count_identities().await.unwrap(), 4);
}

pub(crate) async fn list_pages_newest_first_with_tombstones(any: AnyStore) {
    let store = any.shared();
    assert!(store.list_identities(None, 10).await.unwrap().is_empty());
    let mut made = Vec::new();
    for i in 0..7 {
        // UUID v7 ids are ordered within a millisecond too, so creation order is id order.
        made.push(store.create_identity(new_identity(None, i)).await.unwrap().record);
    }
    store.revoke_tokens(made[2].user).await.unwrap();
    store.delete_identity(made[4].user, at(9)).await.unwrap();
    let mut listed = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_identities(before, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.user);
        listed.extend(page);
    }
    let users: Vec<UserId> = listed.iter().map(|r| r.user).collect();
    let newest_first: Vec<UserId> = made.iter().rev().map(|r| r.user).collect();
    assert_eq!(users, newest_first);
    let find = |u: UserId| listed.iter().find(|r| r.user == u).unwrap().clone();
    assert_eq!(find(made[2].user).generation, 1);
    assert_eq!(find(made[4].user).deleted_at, Some(at(9)));
    assert!(find(made[0].user).is_live());
    assert_eq!(store.list_identities(Some(made[1].user), 10).await.unwrap().len(), 1);
    assert!(store.list_identities(Some(made[0].user), 10).await.unwrap().is_empty());
}

pub(crate) async fn no_resource_before_init(any: AnyStore) {
    let store = any.shared();
    assert_eq!(store.load_resource().await.unwrap(), None);
    let state = resource(1);
    let stored = store.init_resource(state.clone()).await.unwrap();
    assert_eq!(stored, state);
    assert_eq!(store.load_resource().await.unwrap(), Some(state.clone()));
    // A second init keeps the first resource.
    let other = resource(2);
    assert_eq!(store.init_resource(other).await.unwrap(), state);
}

pub(crate) async fn racing_inits_agree_on_one_resource(any: AnyStore) {
    let store = any.shared();
    let candidates: Vec<_> = (10..16).map(resource).collect();
    let mut tasks = Vec::new();
    for c in candidates.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.init_resource(c).await.expect("init") }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let winner = results[0].clone();
    assert!(results.iter().all(|r| *r == winner), "every node got the same resource");
    assert!(candidates.contains(&winner), "the resource is one candidate, whole");
    assert_eq!(store.load_resource().await.unwrap(), Some(winner.clone()));
    assert_eq!(winner.access_keys.len(), 2);
    assert_eq!(winner.signing_keys.len(), 1);
}

pub(crate) async fn keys_version_grows_with_every_key_change(any: AnyStore) {
    use acs_identity_core::hmac::KeyName;
    use acs_identity_core::store::SecretBytes;
    let store = any.shared();
    store.init_resource(resource(4)).await.unwrap();
    // SQLite has a probe cheap enough for every request; PostgreSQL nodes are told.
    let probe = store.keys_probe();
    assert_eq!(probe.is_some(), !store.is_shared());
    let reading = || probe.as_ref().map(|p| p.keys_version().expect("probe"));
    let (v0, p0) = (store.keys_version().await.unwrap(), reading());
    assert_eq!((store.keys_version().await.unwrap(), reading()), (v0, p0), "nothing changed");
    store.regenerate_access_key(KeyName::Secondary, SecretBytes(vec![7; 64])).await.unwrap();
    let (v1, p1) = (store.keys_version().await.unwrap(), reading());
    assert!(v1 > v0, "{v1} after {v0}");
    assert!(p1 != p0 || probe.is_none(), "the probe saw the regeneration");
    store.add_signing_key(signing_key("kid-next", 10)).await.unwrap();
    let (v2, p2) = (store.keys_version().await.unwrap(), reading());
    assert!(v2 > v1, "{v2} after {v1}");
    assert!(p2 != p1 || probe.is_none(), "the probe saw the new signing key");
}

pub(crate) async fn signing_keys_are_added_once(any: AnyStore) {
    let store = any.shared();
    let state = resource(3);
    store.init_resource(state.clone()).await.unwrap();
    let newer = signing_key("kid-newer", 100);
    store.add_signing_key(newer.clone()).await.unwrap();
    store.add_signing_key(newer.clone()).await.unwrap();
    let older = signing_key("kid-older", -100);
    store.add_signing_key(older.clone()).await.unwrap();
    let loaded = store.load_resource().await.unwrap().unwrap();
    assert_eq!(
        loaded.signing_keys,
        vec![older, state.signing_keys[0].clone(), newer],
        "oldest first, each once"
    );
    assert_eq!(loaded.access_keys, state.access_keys);
}

pub(crate) async fn ping_answers(any: AnyStore) {
    any.shared().ping().await.expect("ping");
}

pub(crate) async fn only_a_database_of_several_nodes_is_shared(any: AnyStore) {
    // Identity state may be cached only by a node that is the store's one writer.
    let expected = matches!(any, AnyStore::Postgres(_));
    assert_eq!(any.shared().is_shared(), expected, "{any:?}");
}

pub(crate) async fn teams_extension_assignments(any: AnyStore) {
    let store = any.shared();
    let tenant = "6a0e1d0c-0000-4000-8000-000000000001";
    let a = TeamsExtensionAssignment {
        tenant_id: tenant.to_owned(),
        object_id: "0b000000-0000-4000-8000-000000000002".to_owned(),
        principal_type: "user".to_owned(),
        client_ids: None,
    };
    assert_eq!(store.get_teams_extension_assignment(tenant, &a.object_id).await.unwrap(), None);
    assert!(store.put_teams_extension_assignment(a.clone()).await.unwrap(), "created");
    assert_eq!(
        store.get_teams_extension_assignment(tenant, &a.object_id).await.unwrap(),
        Some(a.clone())
    );
    let changed = TeamsExtensionAssignment {
        principal_type: "resourceAccount".to_owned(),
        client_ids: Some(vec!["c1".to_owned(), "c2".to_owned()]),
        ..a.clone()
    };
    assert!(!store.put_teams_extension_assignment(changed.clone()).await.unwrap(), "replaced");
    assert_eq!(
        store.get_teams_extension_assignment(tenant, &a.object_id).await.unwrap(),
        Some(changed)
    );
    // Keyed by tenant and object: another tenant does not see it.
    assert_eq!(
        store.get_teams_extension_assignment("other-tenant", &a.object_id).await.unwrap(),
        None
    );
    // Listed for export in (tenant, object) order, byte-wise, in pages.
    let mut keys = vec![(tenant.to_owned(), a.object_id.clone())];
    for (t, o) in [("B-tenant", "x"), ("a-tenant", "Y"), ("a-tenant", "y"), (tenant, "0a")] {
        let extra = TeamsExtensionAssignment {
            tenant_id: t.to_owned(),
            object_id: o.to_owned(),
            ..a.clone()
        };
        assert!(store.put_teams_extension_assignment(extra).await.unwrap());
        keys.push((t.to_owned(), o.to_owned()));
    }
    keys.sort_unstable();
    let mut listed = Vec::new();
    loop {
        let page = any.teams_extension_assignments_after(listed.last().cloned(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        listed.extend(page.into_iter().map(|a| (a.tenant_id, a.object_id)));
    }
    assert_eq!(listed, keys);
    assert!(store.delete_teams_extension_assignment(tenant, &a.object_id).await.unwrap());
    assert!(!store.delete_teams_extension_assignment(tenant, &a.object_id).await.unwrap());
    assert_eq!(store.get_teams_extension_assignment(tenant, &a.object_id).await.unwrap(), None);
}

fn entra(object_id: &str, tenant: &str, clients: &[&str]) -> EntraAssignment {
    EntraAssignment {
        object_id: object_id.to_owned(),
        tenant_id: tenant.to_owned(),
        principal_type: "user".to_owned(),
        client_ids: clients.iter().map(|c| (*c).to_owned()).collect(),
    }
}

pub(crate) async fn entra_assignments(any: AnyStore) {
    let store = any.shared();
    let t1 = "11111111-0000-4000-8000-000000000000";
    let t2 = "22222222-0000-4000-8000-000000000000";
    // Mixed case and hyphens: the order is byte-wise whatever the database's locale.
    let ids = ["a-1", "A-2", "b", "a1", "a-10"];
    let changes: Vec<_> = ids
        .iter()
        .map(|id| ((*id).to_owned(), Some(entra(id, if *id == "b" { t2 } else { t1 }, &["c"]))))
        .collect();
    assert_eq!(store.update_entra_assignments(changes).await.unwrap(), vec![true; 5]);
    assert_eq!(store.get_entra_assignment("a1").await.unwrap(), Some(entra("a1", t1, &["c"])));
    assert_eq!(store.get_entra_assignment("zzz").await.unwrap(), None);

    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    let all: Vec<String> = store
        .list_entra_assignments(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.object_id)
        .collect();
    assert_eq!(all, sorted);
    let page: Vec<String> = store
        .list_entra_assignments(Some(sorted[1]), 2)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.object_id)
        .collect();
    assert_eq!(page, sorted[2..4].to_vec());

    // Upsert, delete and create in one update.
    let created = store
        .update_entra_assignments(vec![
            ("a1".to_owned(), Some(entra("a1", t1, &["c", "d"]))),
            ("A-2".to_owned(), None),
            ("new".to_owned(), Some(entra("new", t1, &[]))),
        ])
        .await
        .unwrap();
    assert_eq!(created, vec![false, true]);
    assert_eq!(
        store.get_entra_assignment("a1").await.unwrap().unwrap().client_ids,
        vec!["c".to_owned(), "d".to_owned()]
    );
    assert_eq!(store.get_entra_assignment("A-2").await.unwrap(), None);
    assert_eq!(store.get_entra_assignment("new").await.unwrap(), Some(entra("new", t1, &[])));

    // Lookup for a token: only the token's tenant, in the order asked.
    let wanted: Vec<String> =
        ["new", "b", "missing", "a1", "A-2"].iter().map(|s| (*s).to_owned()).collect();
    let found: Vec<String> = store
        .find_entra_assignments(t1, &wanted)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.object_id)
        .collect();
    assert_eq!(found, vec!["new".to_owned(), "a1".to_owned()]);
    assert!(store.find_entra_assignments(t2, &[]).await.unwrap().is_empty());
}

/// Reads every identity through [`Transfer::identities_after`] in pages of `page`.
async fn export_all(store: &dyn Transfer, page: u32) -> Vec<IdentityRecord> {
    let mut out: Vec<IdentityRecord> = Vec::new();
    loop {
        let batch = store.identities_after(out.last().map(|r| r.user), page).await.unwrap();
        let done = batch.len() < page as usize;
        out.extend(batch);
        if done {
            return out;
        }
    }
}

pub(crate) async fn export_pages_through_every_identity(any: AnyStore) {
    let store = any.shared();
    let mut expected = Vec::new();
    for i in 0..23 {
        let custom = format!("c{i}");
        let r = create(store.as_ref(), (i % 3 == 0).then_some(custom.as_str())).await;
        if i % 4 == 0 {
            store.revoke_tokens(r.user).await.unwrap();
        }
        if i % 5 == 0 {
            store.delete_identity(r.user, at(i)).await.unwrap();
        }
        expected.push(store.get_identity(r.user).await.unwrap().unwrap());
    }
    for page in [1, 5, 23, 100] {
        let exported = export_all(&any, page).await;
        assert_eq!(exported.len(), 23, "page size {page}");
        let mut sorted = expected.clone();
        sorted.sort_by_key(|r| r.user.as_uuid());
        assert_eq!(exported, sorted, "page size {page}: every identity as stored, in id order");
    }
}

pub(crate) async fn import_is_idempotent_and_never_revives_or_unrevokes(any: AnyStore) {
    let store = any.shared();
    let live = IdentityRecord {
        user: UserId::generate(),
        custom_id: Some("imported".to_owned()),
        created_at: at(1),
        deleted_at: None,
        generation: 3,
        last_token_issued_at: Some(at(2)),
    };
    let tombstone = IdentityRecord {
        user: UserId::generate(),
        custom_id: Some("gone".to_owned()),
        created_at: at(1),
        deleted_at: Some(at(4)),
        generation: 1,
        last_token_issued_at: None,
    };
    let batch = vec![live.clone(), tombstone.clone()];
    any.import_identities(&batch).await.unwrap();
    any.import_identities(&batch).await.unwrap();
    assert_eq!(store.get_identity(live.user).await.unwrap(), Some(live.clone()));
    assert_eq!(store.get_identity(tombstone.user).await.unwrap(), Some(tombstone.clone()));
    assert_eq!(store.count_identities().await.unwrap(), 2);
    // The imported custom id maps as any other.
    let again = store.create_identity(new_identity(Some("imported"), 9)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.record.user, live.user);

    // Changes made in the target after the first import survive an older dump.
    store.revoke_tokens(live.user).await.unwrap();
    store.record_tokens_issued(&[(live.user, at(8))]).await.unwrap();
    let older_revival = IdentityRecord { deleted_at: None, ..tombstone.clone() };
    any.import_identities(&[live.clone(), older_revival]).await.unwrap();
    let after = store.get_identity(live.user).await.unwrap().unwrap();
    assert_eq!(after.generation, 4, "never un-revoked");
    assert_eq!(after.last_token_issued_at, Some(at(8)), "the later token time wins");
    let after = store.get_identity(tombstone.user).await.unwrap().unwrap();
    assert_eq!(after.deleted_at, Some(at(4)), "never revived");
    // A newer dump raises the generation.
    any.import_identities(&[IdentityRecord { generation: 9, ..live.clone() }]).await.unwrap();
    assert_eq!(store.get_identity(live.user).await.unwrap().unwrap().generation, 9);
}

pub(crate) async fn import_resource_refuses_another_resource(any: AnyStore) {
    let store = any.shared();
    let mine = resource(4);
    let stored = any.import_resource(&mine).await.unwrap();
    assert_eq!(stored, mine);
    // The same resource again: nothing changes; extra signing keys are added.
    let mut more = mine.clone();
    more.signing_keys.push(signing_key("kid-extra", 50));
    assert_eq!(any.import_resource(&more).await.unwrap(), more);
    assert_eq!(store.load_resource().await.unwrap(), Some(more.clone()));

    let refuse = |e: acs_identity_core::store::StoreError| {
        let chain = std::error::Error::source(&e).expect("cause");
        assert!(chain.downcast_ref::<ImportConflict>().is_some(), "{e:?}");
        chain.to_string()
    };
    let other = any.import_resource(&resource(5)).await.expect_err("another resource");
    assert!(refuse(other).contains("refusing"));
    let mut rekeyed = mine.clone();
    rekeyed.access_keys[0].key.0[0] ^= 1;
    let e = any.import_resource(&rekeyed).await.expect_err("other access keys");
    assert!(refuse(e).contains("access keys"));
    let mut changed_key = more.clone();
    changed_key.signing_keys[1].pkcs8.0.push(0);
    let e = any.import_resource(&changed_key).await.expect_err("other signing key");
    assert!(refuse(e).contains("kid-extra"));
    assert_eq!(store.load_resource().await.unwrap(), Some(more), "nothing was overwritten");
}

pub(crate) async fn schema_version_is_current(any: AnyStore) {
    let version = any.schema_version().await.unwrap();
    assert!(version >= 1);
    assert_eq!(version, any.known_schema_version());
}
