//! `POST /initialtrain` after a retrain promoted a better champion: 409 with a hint, unless
//! `force=true` (query or JSON body); a malformed `force` is a 422 naming it.

mod http_common;

use http_common::{json, post_json, TestState};
use serde_json::json;

#[tokio::test]
async fn initialtrain_refuses_to_replace_a_retrain_champion_unless_forced() {
    let mut state = TestState::new(true, true).await;
    // Any challenger is promoted, so the test does not depend on the comparison.
    state.config.pipeline.promotion.margins = fraudrisk::pipeline::GateMargins {
        roc_auc: 1.0,
        expected_cost: f64::MAX,
        brier: 1.0,
    };
    let app = state.app().await;

    let retrained = app
        .handle(post_json("/retrain?wait=true", &json!({})))
        .await;
    assert_eq!(retrained.status(), 200, "{}", http_common::text(&retrained));
    assert_eq!(json(&retrained)["outcome"], "promoted");

    let refused = app
        .handle(post_json("/initialtrain?wait=true", &json!({})))
        .await;
    assert_eq!(refused.status(), 409, "{}", http_common::text(&refused));
    let body = json(&refused);
    assert!(
        body["hint"].as_str().unwrap_or_default().contains("force"),
        "{body}"
    );

    for (uri, body) in [
        ("/initialtrain?force=yes", json!({})),
        ("/initialtrain", json!({"force": "true"})),
        ("/initialtrain?force=true", json!({"force": false})),
        ("/initialtrain?colour=red", json!({})),
    ] {
        let answer = app.handle(post_json(uri, &body)).await;
        assert_eq!(answer.status(), 422, "{uri} {body}");
        let text = http_common::text(&answer);
        assert!(
            text.contains("\"force\"") || text.contains("\"colour\""),
            "{uri} {body}: {text}"
        );
    }

    let forced = app
        .handle(post_json("/initialtrain?force=true&wait=true", &json!({})))
        .await;
    assert_eq!(forced.status(), 200, "{}", http_common::text(&forced));
    assert_eq!(json(&forced)["version"], 3);
    let again = app
        .handle(post_json(
            "/initialtrain?wait=true",
            &json!({"force": true}),
        ))
        .await;
    assert_eq!(again.status(), 200, "{}", http_common::text(&again));
}
