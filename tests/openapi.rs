//! The OpenAPI document (`GET /api/openapi.json`): served as OpenAPI 3.1 JSON, never
//! rate-limited, listing exactly the operations of docs/api.md's endpoint table, each
//! with its errors in the `{"detail"}` shape and the credentials it takes; and `GET /`,
//! which points to it.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use serde_json::Value;

const DOCUMENT: &str = "/api/openapi.json";
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn document(server: &TestServer) -> Value {
    let (status, content_type, body) = server.request("GET", DOCUMENT, &[], "").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/json");
    serde_json::from_slice(&body).expect("the document is JSON")
}

/// Each operation of the document: (method in upper case, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut all = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                all.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    all
}

/// The (method, path) rows of docs/api.md's "Endpoints" table.
fn documented_endpoints() -> BTreeSet<(String, String)> {
    let api_md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    let section = api_md
        .split("\n## Endpoints\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/api.md has an Endpoints section");
    let mut endpoints = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let path = cells[2].trim_matches('`').to_string();
        for method in cells[1].split(',') {
            endpoints.insert((method.trim().trim_matches('`').to_string(), path.clone()));
        }
    }
    endpoints
}

#[actix_rt::test]
async fn the_document_is_openapi_3_1_json_of_this_version() {
    let server = TestServer::without_limits();
    let doc = document(&server).await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1"), "openapi {version}");
    assert_eq!(doc["info"]["title"], "tidings");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
}

#[actix_rt::test]
async fn the_document_and_the_docs_list_the_same_operations() {
    let server = TestServer::without_limits();
    let doc = document(&server).await;
    let served: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let documented = documented_endpoints();
    assert!(
        documented.len() >= 30,
        "only {} rows read",
        documented.len()
    );
    let missing: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "in docs/api.md, not in the document: {missing:?}"
    );
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "in the document, not in docs/api.md: {undocumented:?}"
    );
    // Each id names one operation.
    let ids: Vec<String> = operations(&doc)
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().expect("operationId").to_string())
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "repeated operation ids: {ids:?}");
}

#[actix_rt::test]
async fn every_operation_lists_its_errors_as_detail_and_its_credentials() {
    let server = TestServer::without_limits();
    let doc = document(&server).await;
    let schemes = &doc["components"]["securitySchemes"];
    for (name, kind, detail) in [
        ("bearer", "http", ("scheme", "bearer")),
        ("basic", "http", ("scheme", "basic")),
        ("api_key", "apiKey", ("name", "X-API-Key")),
        ("topic_token", "apiKey", ("name", "X-Topic-Token")),
        ("auth_query", "apiKey", ("name", "auth")),
    ] {
        assert_eq!(schemes[name]["type"], kind, "{name}: {}", schemes[name]);
        assert_eq!(
            schemes[name][detail.0], detail.1,
            "{name}: {}",
            schemes[name]
        );
    }
    let detail = &doc["components"]["schemas"]["Detail"];
    assert_eq!(
        detail["required"],
        serde_json::json!(["detail"]),
        "{detail}"
    );
    assert_eq!(detail["properties"]["detail"]["type"], "string", "{detail}");
    let detail_ref = serde_json::json!({"$ref": "#/components/schemas/Detail"});

    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let responses = op["responses"].as_object().expect("responses");
        for status in ["400", "500"] {
            assert!(responses.contains_key(status), "{what}: no {status}");
        }
        let limited = !["/health", "/metrics", DOCUMENT].contains(&path.as_str());
        assert_eq!(responses.contains_key("429"), limited, "{what}: 429");
        for (status, response) in responses.iter().filter(|(s, _)| s.as_str() >= "400") {
            let schema = &response["content"]["application/json"]["schema"];
            // `/health`'s 503 is either a detail or its degraded report.
            let ok = schema == &detail_ref || (path == "/health" && status == "503");
            assert!(ok, "{what} {status}: {response}");
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{what} {status}: no description"
            );
        }
        // Whatever takes a credential says which, and what a bad one gets.
        if let Some(security) = op["security"].as_array() {
            assert!(!security.is_empty(), "{what}: empty security");
            for status in ["401", "403"] {
                assert!(responses.contains_key(status), "{what}: no {status}");
            }
            for requirement in security {
                for scheme in requirement.as_object().expect("requirement").keys() {
                    assert!(schemes.get(scheme).is_some(), "{what}: unknown {scheme}");
                }
            }
        }
    }
    let publish = &doc["paths"]["/{topic}"]["post"];
    assert!(publish["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get("topic_token").is_some())));
    let me = &doc["paths"]["/api/me"]["get"];
    assert!(me["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get("api_key").is_some())));
}

#[actix_rt::test]
async fn the_document_is_never_rate_limited() {
    let server = TestServer::start("[limits]\nanonymous_per_minute = 2\n");
    for i in 0..20 {
        let reply = server.reply("GET", DOCUMENT, &[], "").await;
        assert_eq!(reply.status, 200, "fetch {i}: {}", reply.body);
        assert!(reply.header("X-RateLimit-Limit").is_none(), "fetch {i}");
    }
    // Other anonymous paths still are.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(server.reply("GET", "/", &[], "").await.status);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
}

#[actix_rt::test]
async fn get_root_names_the_server_and_its_documents() {
    let server = TestServer::without_limits();
    for accept in [None, Some("application/json"), Some("*/*")] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
        let (status, content_type, body) = server.request("GET", "/", &headers, "").await;
        assert_eq!(status, 200, "{accept:?}");
        assert_eq!(content_type, "application/json", "{accept:?}");
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({
                "name": "tidings",
                "version": env!("CARGO_PKG_VERSION"),
                "app": "/app/",
                "openapi": DOCUMENT,
            })
        );
    }
}

#[actix_rt::test]
async fn a_wrong_method_is_405_naming_the_methods_of_the_route() {
    let server = TestServer::without_limits();
    for (method, path, allow) in [
        ("TRACE", "/api/me", "GET"),
        ("DELETE", "/api/keys", "GET, POST"),
        ("PUT", "/api/topics/news", "GET, DELETE, PATCH"),
        ("POST", "/news/sse", "GET"),
        ("PUT", "/health", "GET"),
        ("DELETE", "/", "GET, POST"),
    ] {
        let reply = server.reply(method, path, &[], "").await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.body);
        assert_eq!(
            reply.body["detail"], "Method not allowed",
            "{method} {path}"
        );
        let mut got: Vec<String> = reply
            .header("Allow")
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        let mut want: Vec<&str> = allow.split(", ").collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{method} {path}");
    }
}

#[actix_rt::test]
async fn a_json_body_must_be_an_object_not_an_array_of_its_fields() {
    let server = TestServer::broker("").await;
    let json = [("Content-Type", "application/json")];
    for (method, path) in [
        ("POST", "/api/keys"),
        ("POST", "/api/topics"),
        ("PATCH", "/api/client-auth"),
        ("POST", "/auth/login"),
    ] {
        let (status, _, body) = server
            .publish_request(method, path, &json, "[null, null]")
            .await;
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(status, 400, "{method} {path}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("Invalid JSON body: "),
            "{method} {path}: {detail}"
        );
    }
    let (status, _, body) = server
        .publish_request("POST", "/api/keys", &json, r#"{"name": "ci"}"#)
        .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
}
