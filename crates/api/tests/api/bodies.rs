//! Request bodies are held to the schema their OpenAPI entry documents:
//! wrong types, `null` where none is allowed, unknown fields and
//! non-objects are 422, and a 422 names every field at fault at once.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, TestResponse};

/// The `(field, message)` pairs of a 422 `validation_error`.
fn field_errors(res: &TestResponse) -> Vec<(String, String)> {
    let problem = res.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_error");
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn fields(res: &TestResponse) -> Vec<String> {
    field_errors(res).into_iter().map(|(f, _)| f).collect()
}

#[tokio::test]
async fn a_422_names_every_missing_and_mistyped_field() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let res = app.post_json("/api/v1/auth/register", "{}").await;
    assert_eq!(
        field_errors(&res),
        [
            ("username".into(), "is required".into()),
            ("email".into(), "is required".into()),
            ("password".into(), "is required".into()),
        ]
    );

    let body = json!({"username": 7, "email": ["SECRET-INPUT"], "extra": "SECRET-INPUT"});
    let res = app
        .post_json("/api/v1/auth/register", &body.to_string())
        .await;
    let mut got = field_errors(&res);
    got.sort();
    assert_eq!(
        got,
        [
            ("email".into(), "must be a string".into()),
            ("extra".into(), "is not a recognised field".into()),
            ("password".into(), "is required".into()),
            ("username".into(), "must be a string".into()),
        ]
    );
    assert!(!String::from_utf8_lossy(&res.body).contains("SECRET-INPUT"));
}

#[tokio::test]
async fn update_me_refuses_what_its_schema_refuses() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (_, token) = app.account("pia", "user").await;
    let put = |body: &'static str| {
        app.send(
            Request::put("/api/v1/users/me")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
    };
    let cases: [(&str, &[&str]); 9] = [
        (r#"{"email": null}"#, &["email"]),
        (r#"{"email": 5}"#, &["email"]),
        (r#"{"full_name": 5}"#, &["full_name"]),
        (
            r#"{"full_name": {"a": 1}, "email": false}"#,
            &["email", "full_name"],
        ),
        (r#"{"role": "admin"}"#, &["role"]),
        ("[]", &["body"]),
        ("null", &["body"]),
        (r#""pia""#, &["body"]),
        ("7", &["body"]),
    ];
    for (body, expected) in cases {
        let mut got = fields(&put(body).await);
        got.sort();
        assert_eq!(got, expected, "{body}");
    }
    // What the schema allows still works: `null` clears the name.
    let res = put(r#"{"full_name": null}"#).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["full_name"], Value::Null);
    assert_eq!(put("{}").await.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_refuses_what_its_schema_refuses() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let logout = |content_type: Option<&'static str>, body: &'static str| {
        let mut req = Request::post("/api/v1/auth/logout");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        app.send(req.body(Body::from(body)).unwrap())
    };
    let json = Some("application/json");
    let cases: [(&str, &[&str]); 6] = [
        (r#"{"refresh_token": null}"#, &["refresh_token"]),
        (r#"{"refresh_token": 12}"#, &["refresh_token"]),
        (r#"{"refresh_token": ["a"]}"#, &["refresh_token"]),
        (r#"{"token": "a"}"#, &["token"]),
        ("[]", &["body"]),
        ("null", &["body"]),
    ];
    for (body, expected) in cases {
        assert_eq!(fields(&logout(json, body).await), expected, "{body}");
    }
    // A body in another media type is not silently ignored.
    for ct in [Some("text/plain"), None] {
        logout(ct, "[]")
            .await
            .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    // No body, or an empty object, is a plain logout.
    for (ct, body) in [
        (None, ""),
        (json, ""),
        (json, "{}"),
        (Some("text/plain"), ""),
    ] {
        assert_eq!(logout(ct, body).await.status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn other_bodies_refuse_null_where_their_schema_does() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (_, admin) = app.account("ada", "admin").await;
    let user = app.register("ben").await;
    let path = format!("/api/v1/users/{}", user["id"].as_str().unwrap());
    for body in [json!({"role": null}), json!({"is_active": null})] {
        let res = app.call("PATCH", &path, &admin, Some(body.clone())).await;
        let key = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(fields(&res), [key], "{body}");
    }
    let res = app
        .call("PATCH", &path, &admin, Some(json!({"full_name": null})))
        .await;
    assert_eq!(res.status, StatusCode::OK);
}
