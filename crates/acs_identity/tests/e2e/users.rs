//! `list_users`: the service's identity list (an acs-identity extension), paged.

use acs_identity::models::{CommunicationIdentityClientListUsersOptions, ListedUserState};
use futures::TryStreamExt;

use super::{http_client, https_client, new_user, pages, serve_https, DEFAULT_API_VERSION};

#[tokio::test]
async fn list_users_pages_newest_first_over_https_and_plain_http() {
    let (server, client) = serve_https(DEFAULT_API_VERSION).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(new_user(&client).await);
    }
    client.revoke_tokens(&made[0], None).await.unwrap();
    client.delete_user(&made[1], None).await.unwrap();
    let newest_first: Vec<String> = made.iter().rev().map(|u| u.id.clone()).collect();

    for client in [https_client(&server), http_client(&server)] {
        let options = CommunicationIdentityClientListUsersOptions {
            max_page_size: Some(2),
            ..Default::default()
        };
        let (sizes, listed) = pages(client.list_users(Some(options)).unwrap()).await;
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(listed.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), newest_first);
        let state = |id: &str| listed.iter().find(|u| u.id == id).unwrap().state.clone();
        assert_eq!(state(&made[0].id), ListedUserState::Revoked);
        assert_eq!(state(&made[1].id), ListedUserState::Deleted);
        assert_eq!(state(&made[2].id), ListedUserState::Active);
        assert!(listed.iter().all(|u| u.last_token_issued_at.is_none()));
    }
    let all: Vec<_> = client.list_users(None).unwrap().try_collect().await.unwrap();
    assert_eq!(all.len(), 5);
    let options = CommunicationIdentityClientListUsersOptions {
        max_page_size: Some(0),
        ..Default::default()
    };
    assert!(client.list_users(Some(options)).is_err());
}
