//! Property tests: no input text makes the config parser, the log parser, the PEM loader or the
//! policy analyser panic, and every requested check gets a report.

use std::sync::atomic::AtomicBool;

use proptest::prelude::*;
use thingward_audit::{AuditInput, CheckName, PolicyRecord, TextSource};

use crate::support::settings;

fn run_all(input: &AuditInput) {
    let reports = thingward_audit::run(
        input,
        &settings(),
        CheckName::all(),
        &|_| {},
        &AtomicBool::new(false),
    );
    assert_eq!(reports.len(), CheckName::all().len());
}

fn text_source(text: String) -> Option<TextSource> {
    Some(TextSource {
        path: "/nonexistent-thingward-test/mosquitto.conf".into(),
        text,
    })
}

/// Lines built from real directive names and value-ish tokens, to reach the parser's branches.
fn config_lines() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "listener",
        "allow_anonymous",
        "per_listener_settings",
        "certfile",
        "keyfile",
        "require_certificate",
        "protocol",
        "max_connections",
        "max_packet_size",
        "log_dest",
        "log_type",
        "connection_messages",
        "acl_file",
        "password_file",
        "include_dir",
        "psk_hint",
        "bind_address",
        "connection",
        "topic",
        "port",
        "#",
        "bogus_directive",
    ]);
    let value = prop::sample::select(vec![
        "",
        "true",
        "false",
        "1883",
        "0.0.0.0",
        "127.0.0.1",
        "-1",
        "0",
        "none",
        "websockets",
        "x.conf",
        "#",
        "notice",
        "99999999999999999999",
        "ünïcödé",
        "\t",
    ]);
    prop::collection::vec((key, prop::collection::vec(value, 0..3)), 0..30).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(k, vs)| format!("{k} {}\n", vs.join(" ")))
            .collect()
    })
}

fn log_lines() -> impl Strategy<Value = String> {
    let ts = prop::sample::select(vec![
        "1700000000: ",
        "2023-11-14T22:13:20: ",
        "",
        "x: ",
        "1e400: ",
        "99999999999999999999: ",
    ]);
    let msg = prop::sample::select(vec![
        "New client connected from 1.2.3.4:5 as a (p2, c1, k60, u'cn').",
        "New client connected from 1.2.3.4:5 as b (p2, c1, k60).",
        "New client connected from  as  (",
        "New client connected from x as (u'",
        "Client a already connected, closing old connection.",
        "Client  already connected, closing old connection.",
        "Client a disconnected.",
        "Client b closed its connection.",
        "Socket error on client a, disconnecting.",
    ]);
    prop::collection::vec((ts, msg), 0..40)
        .prop_map(|l| l.into_iter().map(|(t, m)| format!("{t}{m}\n")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_broker_config_never_panics(text in any::<String>()) {
        run_all(&AuditInput { broker_config: text_source(text), ..Default::default() });
    }

    #[test]
    fn directive_shaped_broker_config_never_panics(text in config_lines()) {
        run_all(&AuditInput { broker_config: text_source(text), ..Default::default() });
    }

    #[test]
    fn arbitrary_connection_log_never_panics(text in any::<String>(), shaped in log_lines()) {
        for t in [text, shaped] {
            run_all(&AuditInput {
                connection_log: Some(TextSource { path: "log".into(), text: t }),
                ..Default::default()
            });
        }
    }

    #[test]
    fn arbitrary_pem_text_never_panics(text in any::<String>(), body in "[A-Za-z0-9+/=\n]{0,200}") {
        thingward_audit::parse_pem_bundle(&text, "x.pem");
        let framed = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n{text}");
        let bundle = thingward_audit::parse_pem_bundle(&framed, "x.pem");
        prop_assert!(bundle.certs.len() + bundle.problems.len() >= 1);
    }

    #[test]
    fn arbitrary_policy_documents_never_panic(doc in any::<String>(), json in policy_json()) {
        let policies = [doc, json]
            .into_iter()
            .enumerate()
            .map(|(i, document)| PolicyRecord {
                name: format!("p{i}"),
                version_id: "1".into(),
                document,
                is_default: true,
                source: "api".into(),
                targets: vec![],
            })
            .collect();
        run_all(&AuditInput { policies, ..Default::default() });
    }

    #[test]
    fn arbitrary_der_never_panics(der in prop::collection::vec(any::<u8>(), 0..300)) {
        let record = thingward_audit::CertRecord {
            id: thingward_audit::cert_id(&der),
            der: der.clone(),
            status: thingward_audit::CertStatus::Active,
            source: "x".into(),
            things: vec![],
            created_ms: 0,
        };
        let crl = thingward_audit::CrlRecord { der, source: "x.crl".into() };
        run_all(&AuditInput {
            device_certs: vec![record.clone()],
            ca_certs: vec![record],
            crls: vec![crl],
            ..Default::default()
        });
    }
}

/// JSON-shaped policy documents with arbitrary actions and resources.
fn policy_json() -> impl Strategy<Value = String> {
    let s = prop::sample::select(vec![
        "\"*\"",
        "\"iot:*\"",
        "\"iot:Publish\"",
        "\"arn:aws:iot:*:*:topic/#\"",
        "\"arn:aws:iot:*:*:topicfilter/*\"",
        "\"${iot:ClientId}\"",
        "1",
        "null",
        "[]",
        "{}",
        "[\"*\", 2]",
        "\"a/+/b\"",
        "\"***?*\"",
    ]);
    let effect = prop::sample::select(vec!["\"Allow\"", "\"Deny\"", "\"Maybe\"", "3"]);
    prop::collection::vec((effect, s.clone(), s), 0..5).prop_map(|stmts| {
        let body: Vec<String> = stmts
            .into_iter()
            .map(|(e, a, r)| format!("{{\"Effect\":{e},\"Action\":{a},\"Resource\":{r}}}"))
            .collect();
        format!("{{\"Statement\":[{}]}}", body.join(","))
    })
}
