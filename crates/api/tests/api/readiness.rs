//! `/ready` follows the database: 503 while it is down, 200 again once it is
//! back, without a restart.

use http::StatusCode;

use crate::harness::{Backend, Proxy, TestApp, TestDb, backends, config, postgres_addr};

#[tokio::test]
async fn ready_when_the_database_answers() {
    for backend in backends() {
        let app = TestApp::new(&backend).await;
        let res = app.get("/ready").await;
        assert_eq!(res.status, StatusCode::OK, "{backend:?}");
        assert_eq!(res.json()["checks"]["database"], "ok");
    }
}

#[tokio::test]
async fn sqlite_pool_gone_is_not_ready() {
    let app = TestApp::new(&Backend::Sqlite).await;
    app.db.db.close().await;
    let res = app.get("/ready").await;
    let body = res.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    assert_eq!(body["checks"]["database"], "unavailable");
}

#[tokio::test]
async fn postgres_outage_and_recovery() {
    let Some(url) = backends().into_iter().find_map(|b| match b {
        Backend::Postgres(url) => Some(url),
        Backend::Sqlite => None,
    }) else {
        eprintln!("TEST_DATABASE_URL unset: PostgreSQL outage test not run");
        return;
    };
    let proxy = Proxy::start(postgres_addr(&url)).await;
    let db = TestDb::with_postgres_addr(&Backend::Postgres(url), Some(proxy.addr)).await;
    let app = TestApp::on(db, config(&[]), Default::default());

    assert_eq!(app.get("/ready").await.status, StatusCode::OK);

    proxy.cut();
    let res = app.get("/ready").await;
    let body = res.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    assert_eq!(body["checks"]["database"], "unavailable");
    let text = String::from_utf8_lossy(&res.body);
    assert!(
        !text.contains("127.0.0.1") && !text.contains("sqlx"),
        "{text}"
    );

    proxy.restore();
    let res = app.get("/ready").await;
    assert_eq!(res.status, StatusCode::OK, "recovers with no restart");
}
