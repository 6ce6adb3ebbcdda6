//! `writ serve --app examples/users --domain orders`: the example's `projections/profiles.js`
//! joins users (a resource type) with orders (a compiled domain), and its `userProfile`
//! query answers, named and in query code, what the contract says: paid orders of the
//! user's id count, others do not.

mod support;

use std::path::PathBuf;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::Harness;

fn users_and_orders() -> Harness {
    Harness::start_with(&["orders"], |config| {
        config.app = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/users"));
    })
}

/// A paid order of `customer` for `quantity` pens at `price` cents.
async fn paid_order(h: &Harness, order: &str, customer: &str, quantity: i64, price: u64) {
    h.draft(order, customer, &[("pen", quantity, price)]).await;
    h.submit_order(order, None).await;
    assert_eq!(h.order_status(order).await, "awaiting_payment");
    h.ok(
        "RecordPayment",
        json!({"orderId": order, "amountCents": quantity as u64 * price}),
    )
    .await;
}

#[tokio::test]
async fn user_profile_counts_the_paid_orders_of_the_users_id() {
    let h = users_and_orders();
    h.add_stock("pen", 100).await;
    h.ok(
        "CreateUser",
        json!({"id": "ann", "document": {"name": "Ann", "email": "ann@example.com"}}),
    )
    .await;
    let created_at = h.stream("users-ann").await[0]["metadata"]["recordedAt"].clone();
    assert!(created_at.is_string(), "{created_at}");
    // Before any order: zero of both.
    let profile = h.query_ok("userProfile?id=ann").await;
    assert_eq!(profile["orderCount"], 0);
    assert_eq!(profile["lifetimeValueCents"], 0);
    assert_eq!(profile["createdAt"], created_at);

    paid_order(&h, "o-1", "ann", 2, 150).await;
    paid_order(&h, "o-2", "ann", 1, 999).await;
    // Not paid: submitted only.
    h.draft("o-3", "ann", &[("pen", 5, 100)]).await;
    h.submit_order("o-3", None).await;
    // Another customer's.
    paid_order(&h, "o-4", "bob", 3, 100).await;

    let profile = h.query_ok("userProfile?id=ann").await;
    assert_eq!(
        profile,
        json!({
            "id": "ann",
            "email": "ann@example.com",
            "name": "Ann",
            "orderCount": 2,
            "lifetimeValueCents": 300 + 999,
            "createdAt": created_at,
        })
    );
    // A patch of the user shows in the profile.
    h.ok(
        "PatchUser",
        json!({"id": "ann", "patch": [{"op": "replace", "path": "/name", "value": "Ann B."}]}),
    )
    .await;
    let profile = h.query_ok("userProfile?id=ann").await;
    assert_eq!(profile["name"], "Ann B.");
    assert_eq!(profile["orderCount"], 2);

    // The same function in query code, named and positional.
    let from_code = h
        .code_ok(
            "userProfile({id: args.id}).lifetimeValueCents",
            json!({"id": "ann"}),
        )
        .await;
    assert_eq!(from_code, json!(1299));
    let from_code = h
        .code_ok("userProfile(args.id).orderCount", json!({"id": "ann"}))
        .await;
    assert_eq!(from_code, json!(2));

    // No such user: 404. An unknown argument: 400.
    let answer = h.query(1, "userProfile?id=nobody").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    let answer = h.query(1, "userProfile?id=ann&color=red").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());

    // Bob's orders count for bob once he is a user: the figures are kept by customer id.
    h.ok(
        "CreateUser",
        json!({"id": "bob", "document": {"name": "Bob", "email": "bob@example.com"}}),
    )
    .await;
    let profile: Value = h.query_ok("userProfile?id=bob").await;
    assert_eq!(
        (&profile["orderCount"], &profile["lifetimeValueCents"]),
        (&json!(1), &json!(300))
    );
    // A deleted user has no profile.
    h.ok("DeleteUser", json!({"id": "bob"})).await;
    let answer = h.query(1, "userProfile?id=bob").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
}

#[tokio::test]
async fn the_profiles_read_model_is_listed_with_the_others() {
    let h = users_and_orders();
    let answer = support::call(&h.app, support::get("/projections")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.text().contains("\"profiles\""), "{}", answer.text());
}

#[tokio::test]
async fn without_orders_the_profiles_count_nothing_and_the_server_starts() {
    let h = Harness::start_with(&[], |config| {
        config.app = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/users"));
    });
    h.ok(
        "CreateUser",
        json!({"id": "ann", "document": {"name": "Ann", "email": "ann@example.com"}}),
    )
    .await;
    let profile = h.query_ok("userProfile?id=ann").await;
    assert_eq!(
        (&profile["orderCount"], &profile["lifetimeValueCents"]),
        (&json!(0), &json!(0))
    );
}
