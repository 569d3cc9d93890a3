use domain::ports::{StoreError, UserStore};
use domain::{Email, NewUser, PageLimit, PageRequest, PasswordHash, Role, User, UserId};
use futures::future::join_all;
use platform::dynamo::DynamoUserStore;
use time::OffsetDateTime;

use crate::fresh_table;

fn new_user(email: &str) -> User {
    NewUser {
        email: Email::parse(email).unwrap(),
        password_hash: PasswordHash::from_phc("$argon2id$v=19$m=12288,t=3,p=1$c2FsdA$aGFzaA".into()),
        role: Role::User,
    }
    .into_user(OffsetDateTime::now_utc().replace_nanosecond(0).unwrap())
}

fn page(limit: &str, after: Option<String>) -> PageRequest {
    PageRequest { limit: PageLimit::parse(Some(limit)).unwrap(), after }
}

#[tokio::test]
async fn stores_and_reads_back_by_id_and_email() {
    let store = DynamoUserStore::new(fresh_table().await);
    let user = new_user("grace@example.com");
    store.insert(&user, None).await.unwrap();
    assert_eq!(store.get(user.id).await.unwrap().as_ref(), Some(&user));
    assert_eq!(store.find_by_email(&user.email).await.unwrap().as_ref(), Some(&user));
    assert_eq!(store.get(UserId::generate()).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_inserts_of_one_email_have_one_winner() {
    let store = DynamoUserStore::new(fresh_table().await);
    let attempts: Vec<User> = (0..8).map(|_| new_user("same@example.com")).collect();
    let outcomes = join_all(attempts.iter().map(|user| store.insert(user, None))).await;
    let winners = outcomes.iter().filter(|o| o.is_ok()).count();
    let taken =
        outcomes.iter().filter(|o| matches!(o, Err(StoreError::AlreadyExists(domain::ports::Taken::Email)))).count();
    assert_eq!((winners, taken), (1, 7), "{outcomes:?}");
    assert_eq!(store.list(&page("10", None)).await.unwrap().total, 1, "the counter moved once");
}

#[tokio::test]
async fn updates_are_conditional_on_the_version_read() {
    let store = DynamoUserStore::new(fresh_table().await);
    let user = new_user("linus@example.com");
    store.insert(&user, None).await.unwrap();
    let patch = domain::UserPatch { role: Some(Role::Admin), disabled: None };
    let updated = user.patched(&patch, UserId::generate(), OffsetDateTime::now_utc()).unwrap();
    store.update(&updated).await.unwrap();
    // A second writer that read version 1 too loses, and changes nothing.
    let late = domain::UserPatch { role: None, disabled: Some(true) };
    let stale = user.patched(&late, UserId::generate(), OffsetDateTime::now_utc()).unwrap();
    assert!(matches!(store.update(&stale).await, Err(StoreError::VersionMismatch)));
    let stored = store.find_by_email(&user.email).await.unwrap().unwrap();
    assert_eq!((stored.role, stored.disabled, stored.version), (Role::Admin, false, 2));

    let ghost = new_user("ghost@example.com");
    let ghost = ghost.patched(&patch, UserId::generate(), OffsetDateTime::now_utc()).unwrap();
    assert!(matches!(store.update(&ghost).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn lists_newest_first_in_pages_with_a_total() {
    let store = DynamoUserStore::new(fresh_table().await);
    let mut ids = Vec::new();
    for i in 0..7 {
        let user = new_user(&format!("user{i}@example.com"));
        store.insert(&user, None).await.unwrap();
        ids.push(user.id);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    ids.reverse();

    let first = store.list(&page("3", None)).await.unwrap();
    assert_eq!(first.total, 7);
    assert_eq!(first.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[..3]);
    let second = store.list(&page("3", first.next.clone())).await.unwrap();
    assert_eq!(second.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[3..6]);
    let last = store.list(&page("3", second.next.clone())).await.unwrap();
    assert_eq!(last.items.iter().map(|u| u.id).collect::<Vec<_>>(), ids[6..]);
    assert_eq!(last.next, None, "no empty trailing page");

    let exact = store.list(&page("7", None)).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (7, None));
    assert!(matches!(store.list(&page("3", Some("garbage".into()))).await, Err(StoreError::InvalidPosition)));
}
