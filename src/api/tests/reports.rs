//! Device reports over HTTP, JSON and CBOR.

use super::*;

#[tokio::test]
async fn device_reports_over_http_in_json_and_cbor() {
    let t = TestApp::new();
    t.watch_all("p", json!([few_ports()])).await;

    let ports: Vec<u16> = (20..30).collect();
    let body = t
        .post("/thingward/v1/things/cam/report", report(1, &ports))
        .await
        .ok();
    assert_eq!(body["thingName"], "cam");
    assert_eq!(body["reportId"], 1);
    assert_eq!(body["status"], "ACCEPTED");
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["lastViolationValue"], json!({ "count": 10 }));

    // The same report in CBOR, short keys, for another thing.
    let short = json!({
        "hed": { "rid": 1, "v": "1.0" },
        "met": { "tp": { "pts": [{ "pt": 22 }, { "pt": 80 }, { "pt": 443 }, { "pt": 8080 }, { "pt": 8443 }, { "pt": 9000 }] } }
    });
    let mut cbor = Vec::new();
    ciborium::into_writer(&short, &mut cbor).expect("cbor");
    let reply = t
        .send_raw(
            Method::POST,
            "/thingward/v1/things/door/report",
            Some("application/cbor"),
            cbor.clone(),
        )
        .await;
    let body = reply.ok();
    assert_eq!(body["reportId"], 1);
    assert_eq!(body["thingName"], "door");
    assert_eq!(things_of(&t.active("").await), ["cam", "door"]);

    // A compliant report clears.
    t.advance_secs(300);
    t.post("/thingward/v1/things/cam/report", report(2, &[22]))
        .await
        .ok();
    assert_eq!(things_of(&t.active("").await), ["door"]);

    // A report id the thing used recently is refused, in either encoding.
    t.post("/thingward/v1/things/cam/report", report(2, &[22]))
        .await
        .invalid("DuplicateReportId");
    t.send_raw(
        Method::POST,
        "/thingward/v1/things/door/report",
        Some("application/cbor"),
        cbor,
    )
    .await
    .invalid("DuplicateReportId");
    // ... but another thing may use it.
    t.post("/thingward/v1/things/gate/report", report(2, &[22]))
        .await
        .ok();

    // Broken reports say why.
    t.post(
        "/thingward/v1/things/cam/report",
        json!({ "header": { "version": "1.0" }, "metrics": {} }),
    )
    .await
    .invalid("report_id");
    t.send_raw(
        Method::POST,
        "/thingward/v1/things/cam/report",
        Some("application/cbor"),
        vec![0xff, 0x00],
    )
    .await
    .invalid("InvalidCbor");
    t.send_raw(
        Method::POST,
        "/thingward/v1/things/cam/report",
        Some("application/json"),
        b"{".to_vec(),
    )
    .await
    .invalid("InvalidJson");
}
