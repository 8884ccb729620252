//! Cost of authorizing a request whose credential is already cached (no database),
//! and of the permission check itself.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tidings::auth::credential::Credential;
use tidings::auth::permissions::{authorize, Action, TopicInfo, Visibility};
use tidings::auth::Auth;
use tidings::service::accounts::{create_user, NewUser};
use tidings::service::keys::create_api_key;

fn cached_credentials(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("bench.db").display().to_string();
    let pool = tidings::db::open(&url).unwrap();
    let mut conn = pool.get().unwrap();
    let new = NewUser {
        email: "bench@example.com",
        username: "bench",
        password: Some("benchmark password"),
        tier: "free",
    };
    let user = create_user(&mut conn, &new).unwrap();
    let key = create_api_key(&mut conn, &user.id, "bench", None).unwrap();
    drop(conn);

    let system = actix_rt::System::new();
    let auth = system.block_on(async { Auth::start(pool.clone(), b"bench secret", 1) });
    let jwt = auth.jwt().issue(&user.id, tidings::util::now_unix(), 3600);
    let api_key = Credential::ApiKey(key.secret.clone());
    let access = Credential::AccessToken(jwt);
    // Warm the caches; from here on no check may touch the database.
    system
        .block_on(auth.resolve(api_key.clone(), None))
        .unwrap();
    system.block_on(auth.resolve(access.clone(), None)).unwrap();
    let lookups = auth.db_lookups();

    c.bench_function("resolve cached API key", |b| {
        b.iter(|| {
            system
                .block_on(auth.resolve(api_key.clone(), None))
                .unwrap()
        })
    });
    c.bench_function("resolve access JWT (cached account)", |b| {
        b.iter(|| system.block_on(auth.resolve(access.clone(), None)).unwrap())
    });
    assert_eq!(
        auth.db_lookups(),
        lookups,
        "cached checks queried the database"
    );

    let principal = system
        .block_on(auth.resolve(api_key.clone(), None))
        .unwrap();
    let topic = Arc::new(TopicInfo {
        name: "alerts".into(),
        owner_id: user.id.clone(),
        visibility: Visibility::Private,
    });
    c.bench_function("authorize publish on a private topic", |b| {
        b.iter(|| authorize(&principal, "alerts", Some(&topic), Action::Publish).unwrap())
    });
}

criterion_group!(benches, cached_credentials);
criterion_main!(benches);
