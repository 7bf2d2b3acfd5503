//! The auditable part of the AWS IoT registry at AWS's paths: device and CA certificates,
//! IoT policies and their versions and targets, thing principals, the account's logging
//! options; and CRLs at thingward's own path (AWS has no CRL API).

use super::error::{ApiError, policy_version_error};
use super::extract::{ApiBytes, ApiJson, ApiPath, Page, QueryMap};
use super::{AppState, empty};
use crate::audit::snapshot;
use crate::store::{CertKind, CertStatus, CertificateRecord, LoggingOptions, PolicyVersionRecord};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use thingward_models::ThingName;
use thingward_models::time::{EpochMillis, millis_to_seconds};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/certificate/register", post(cert_register))
        .route("/certificate/register-no-ca", post(cert_register_no_ca))
        .route("/certificates", get(certs_list))
        .route(
            "/certificates/{id}",
            get(cert_describe).put(cert_update).delete(cert_delete),
        )
        .route("/cacertificate", post(ca_register))
        .route("/cacertificates", get(cas_list))
        .route(
            "/cacertificate/{id}",
            get(ca_describe).put(ca_update).delete(ca_delete),
        )
        .route("/policies", get(policies_list))
        .route(
            "/policies/{name}",
            post(policy_create).get(policy_get).delete(policy_delete),
        )
        .route(
            "/policies/{name}/version",
            post(policy_version_create).get(policy_versions_list),
        )
        .route(
            "/policies/{name}/version/{version}",
            get(policy_version_get)
                .patch(policy_default_set)
                .delete(policy_version_delete),
        )
        .route(
            "/target-policies/{name}",
            put(policy_attach).post(policy_detach),
        )
        .route(
            "/things/{name}/principals",
            put(principal_attach)
                .delete(principal_detach)
                .get(principals_list),
        )
        .route("/v2LoggingOptions", get(logging_get).post(logging_set))
        .route("/thingward/v1/crls", get(crls_list))
        .route(
            "/thingward/v1/crls/{name}",
            put(crl_put).get(crl_get).delete(crl_delete),
        )
}

// ---------------------------------------------------------------------------------------------
// Certificates

fn kind_arn(state: &AppState, kind: CertKind, id: &str) -> String {
    match kind {
        CertKind::Device => state.arn(&format!("cert/{id}")),
        CertKind::Ca => state.arn(&format!("cacert/{id}")),
    }
}

fn kind_name(kind: CertKind) -> &'static str {
    match kind {
        CertKind::Device => "Certificate",
        CertKind::Ca => "CA certificate",
    }
}

/// A certificate id: 64 hex characters (lowercased).
fn check_cert_id(id: &str) -> Result<String, ApiError> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::InvalidRequest(format!(
            "certificateId '{id}' must be 64 hexadecimal characters"
        )));
    }
    Ok(id.to_ascii_lowercase())
}

fn parse_status(s: &str, allowed: &[CertStatus]) -> Result<CertStatus, ApiError> {
    CertStatus::parse(s)
        .filter(|st| allowed.contains(st))
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            ApiError::InvalidRequest(format!(
                "status must be one of {}; got '{s}'",
                names.join(", ")
            ))
        })
}

const DEVICE_SETTABLE: &[CertStatus] = &[
    CertStatus::Active,
    CertStatus::Inactive,
    CertStatus::Revoked,
    CertStatus::RegisterInactive,
    CertStatus::PendingActivation,
];
const CA_SETTABLE: &[CertStatus] = &[CertStatus::Active, CertStatus::Inactive];

/// The DER of a PEM certificate from a request; a PEM that does not parse is an
/// InvalidRequestException naming the problem.
fn request_der(member: &str, pem: &str) -> Result<Vec<u8>, ApiError> {
    snapshot::pem_certificate(pem, member).map_err(|why| {
        ApiError::InvalidRequest(format!("{member} is not a usable certificate: {why}"))
    })
}

/// Registers a device or CA certificate; a duplicate is ResourceAlreadyExistsException.
fn register(
    state: &AppState,
    kind: CertKind,
    pem: &str,
    status: CertStatus,
    ca_cert_id: Option<String>,
    auto_registration: Option<String>,
) -> Result<Json<JsonValue>, ApiError> {
    let member = match kind {
        CertKind::Device => "certificatePem",
        CertKind::Ca => "caCertificate",
    };
    let der = request_der(member, pem)?;
    let is_ca = thingward_audit::is_ca(&der).map_err(ApiError::InvalidRequest)?;
    if kind == CertKind::Ca && !is_ca {
        return Err(ApiError::InvalidRequest(
            "caCertificate is not a CA certificate (basicConstraints CA:TRUE is missing)".into(),
        ));
    }
    let id = thingward_audit::cert_id(&der);
    let arn = kind_arn(state, kind, &id);
    let now = state.audit.now_ms();
    let inserted = state.store.cert_insert(&CertificateRecord {
        cert_id: id.clone(),
        kind,
        pem: pem.to_owned(),
        status,
        ca_cert_id,
        auto_registration,
        created_ms: now,
        modified_ms: now,
    })?;
    if !inserted {
        return Err(ApiError::AlreadyExists {
            message: format!("{} {id} is already registered", kind_name(kind)),
            resource_id: id,
            resource_arn: arn,
        });
    }
    Ok(Json(json!({ "certificateArn": arn, "certificateId": id })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CertRegister {
    certificate_pem: String,
    ca_certificate_pem: Option<String>,
    set_as_active: Option<bool>,
    status: Option<String>,
}

fn register_status(
    q: &QueryMap,
    body_flag: Option<bool>,
    status: Option<&str>,
    allowed: &[CertStatus],
) -> Result<CertStatus, ApiError> {
    if let Some(s) = status {
        return parse_status(s, allowed);
    }
    let active = q.bool("setAsActive")?.or(body_flag).unwrap_or(false);
    Ok(if active {
        CertStatus::Active
    } else {
        CertStatus::Inactive
    })
}

async fn cert_register(
    State(state): State<AppState>,
    q: QueryMap,
    ApiJson(body): ApiJson<CertRegister>,
) -> Result<Json<JsonValue>, ApiError> {
    let status = register_status(
        &q,
        body.set_as_active,
        body.status.as_deref(),
        DEVICE_SETTABLE,
    )?;
    let ca_id = body
        .ca_certificate_pem
        .as_deref()
        .map(|pem| request_der("caCertificatePem", pem).map(|der| thingward_audit::cert_id(&der)))
        .transpose()?;
    register(
        &state,
        CertKind::Device,
        &body.certificate_pem,
        status,
        ca_id,
        None,
    )
}

async fn cert_register_no_ca(
    State(state): State<AppState>,
    q: QueryMap,
    ApiJson(body): ApiJson<CertRegister>,
) -> Result<Json<JsonValue>, ApiError> {
    if body.ca_certificate_pem.is_some() {
        return Err(ApiError::InvalidRequest(
            "RegisterCertificateWithoutCA takes no caCertificatePem".into(),
        ));
    }
    let status = register_status(
        &q,
        body.set_as_active,
        body.status.as_deref(),
        DEVICE_SETTABLE,
    )?;
    register(
        &state,
        CertKind::Device,
        &body.certificate_pem,
        status,
        None,
        None,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CaRegister {
    ca_certificate: String,
    verification_certificate: Option<String>,
    set_as_active: Option<bool>,
    allow_auto_registration: Option<bool>,
    registration_config: Option<JsonValue>,
    tags: Option<JsonValue>,
    certificate_mode: Option<String>,
}

async fn ca_register(
    State(state): State<AppState>,
    q: QueryMap,
    ApiJson(body): ApiJson<CaRegister>,
) -> Result<Json<JsonValue>, ApiError> {
    let status = register_status(&q, body.set_as_active, None, CA_SETTABLE)?;
    let auto = q
        .bool("allowAutoRegistration")?
        .or(body.allow_auto_registration)
        .unwrap_or(false);
    if let Some(m) = body.certificate_mode.as_deref()
        && m != "DEFAULT"
        && m != "SNI_ONLY"
    {
        return Err(ApiError::InvalidRequest(format!(
            "certificateMode must be DEFAULT or SNI_ONLY; got '{m}'"
        )));
    }
    if let Some(v) = body.verification_certificate.as_deref() {
        request_der("verificationCertificate", v)?;
    }
    let _ = (body.registration_config, body.tags);
    register(
        &state,
        CertKind::Ca,
        &body.ca_certificate,
        status,
        None,
        Some(if auto { "ENABLE" } else { "DISABLE" }.into()),
    )
}

/// The certificate of `kind` with this id in the configured directories, with its status
/// override applied.
fn in_directories(
    state: &AppState,
    kind: CertKind,
    id: &str,
) -> Result<Option<thingward_audit::CertRecord>, ApiError> {
    let input = snapshot::build(state.audit.files(), None)?;
    let certs = match kind {
        CertKind::Device => input.device_certs,
        CertKind::Ca => input.ca_certs,
    };
    let Some(mut cert) = certs.into_iter().find(|c| c.id == id) else {
        return Ok(None);
    };
    if let Some(s) = state.store.cert_status_overrides()?.get(id) {
        cert.status = *s;
    }
    Ok(Some(cert))
}

/// The PEM block a `path:line` source points at (directory certificates read from PEM).
fn source_pem(source: &str) -> Option<String> {
    let (path, line) = source.rsplit_once(':')?;
    let line: usize = line.parse().ok()?;
    let text = std::fs::read_to_string(path).ok()?;
    let mut block = String::new();
    for l in text.lines().skip(line.checked_sub(1)?) {
        block.push_str(l);
        block.push('\n');
        if l.trim_start().starts_with("-----END ") {
            return Some(block);
        }
    }
    None
}

/// DescribeCertificate's shape for a directory certificate (`source` is thingward's own).
fn directory_json(state: &AppState, kind: CertKind, c: &thingward_audit::CertRecord) -> JsonValue {
    let mut d = json!({
        "certificateArn": kind_arn(state, kind, &c.id),
        "certificateId": c.id,
        "status": c.status.as_str(),
        "ownedBy": &*state.account,
        "creationDate": millis_to_seconds(c.created_ms),
        "lastModifiedDate": millis_to_seconds(c.created_ms),
        "certificateMode": "DEFAULT",
        "source": c.source,
    });
    if let Some(pem) = source_pem(&c.source) {
        d["certificatePem"] = json!(pem);
    }
    if let Ok(s) = thingward_audit::summarize(&c.der) {
        d["validity"] = json!({
            "notBefore": millis_to_seconds(s.not_before_ms),
            "notAfter": millis_to_seconds(s.not_after_ms),
        });
    }
    d
}

fn registered(state: &AppState, kind: CertKind, id: &str) -> Result<CertificateRecord, ApiError> {
    state
        .store
        .cert_get(kind, id)?
        .ok_or_else(|| ApiError::not_found(kind_name(kind), id))
}

fn describe_json(state: &AppState, rec: &CertificateRecord) -> JsonValue {
    let mut d = json!({
        "certificateArn": kind_arn(state, rec.kind, &rec.cert_id),
        "certificateId": rec.cert_id,
        "status": rec.status.as_str(),
        "certificatePem": rec.pem,
        "ownedBy": &*state.account,
        "creationDate": millis_to_seconds(rec.created_ms),
        "lastModifiedDate": millis_to_seconds(rec.modified_ms),
        "customerVersion": 1,
        "certificateMode": "DEFAULT",
    });
    if let Some(ca) = &rec.ca_cert_id {
        d["caCertificateId"] = json!(ca);
    }
    if let Some(a) = &rec.auto_registration {
        d["autoRegistrationStatus"] = json!(a);
    }
    if let Ok(der) = snapshot::pem_certificate(&rec.pem, "stored")
        && let Ok(s) = thingward_audit::summarize(&der)
    {
        d["validity"] = json!({
            "notBefore": millis_to_seconds(s.not_before_ms),
            "notAfter": millis_to_seconds(s.not_after_ms),
        });
    }
    d
}

async fn describe(state: &AppState, kind: CertKind, id: &str) -> Result<Json<JsonValue>, ApiError> {
    let id = check_cert_id(id)?;
    let description = match state.store.cert_get(kind, &id)? {
        Some(rec) => describe_json(state, &rec),
        None => match in_directories(state, kind, &id)? {
            Some(c) => directory_json(state, kind, &c),
            None => {
                return Err(ApiError::not_found(kind_name(kind), &id));
            }
        },
    };
    Ok(Json(json!({ "certificateDescription": description })))
}

async fn cert_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    describe(&state, CertKind::Device, &id).await
}

async fn ca_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    describe(&state, CertKind::Ca, &id).await
}

/// ListCertificates / ListCACertificates page with `marker` / `pageSize` (AWS's names).
fn marker_page(q: &QueryMap) -> Result<Page, ApiError> {
    let size = q.int("pageSize", 1..=250)?;
    Page::from_parts(q.str("marker"), size, "pageSize", 25, 250)
}

/// Every certificate of `kind` as (id, status, creation time), by creation time: those
/// registered through the API and those in the audit config's directories (read now, status
/// overrides applied; one also registered through the API is listed once).
fn all_certificates(
    state: &AppState,
    kind: CertKind,
) -> Result<Vec<(String, CertStatus, EpochMillis)>, ApiError> {
    let mut all: Vec<_> = state
        .store
        .certs_all(kind)?
        .into_iter()
        .map(|c| (c.cert_id, c.status, c.created_ms))
        .collect();
    let registered: std::collections::HashSet<String> =
        all.iter().map(|(id, _, _)| id.clone()).collect();
    let input = snapshot::build(state.audit.files(), None)?;
    let overrides = state.store.cert_status_overrides()?;
    let directory = match kind {
        CertKind::Device => input.device_certs,
        CertKind::Ca => input.ca_certs,
    };
    for c in directory {
        if !registered.contains(&c.id) {
            let status = overrides.get(&c.id).copied().unwrap_or(c.status);
            all.push((c.id, status, c.created_ms));
        }
    }
    all.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    Ok(all)
}

fn list(state: &AppState, kind: CertKind, q: &QueryMap) -> Result<Json<JsonValue>, ApiError> {
    let page = marker_page(q)?;
    let mut all = all_certificates(state, kind)?;
    if q.bool("isAscendingOrder")? == Some(false) {
        all.reverse();
    }
    let (items, next) = page.slice(all);
    let items: Vec<JsonValue> = items
        .iter()
        .map(|(id, status, created_ms)| {
            json!({
                "certificateArn": kind_arn(state, kind, id),
                "certificateId": id,
                "status": status.as_str(),
                "certificateMode": "DEFAULT",
                "creationDate": millis_to_seconds(*created_ms),
            })
        })
        .collect();
    Ok(Page::marker_response("certificates", items, next))
}

async fn certs_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    list(&state, CertKind::Device, &q)
}

async fn cas_list(State(state): State<AppState>, q: QueryMap) -> Result<Json<JsonValue>, ApiError> {
    list(&state, CertKind::Ca, &q)
}

/// Sets a status: a registered certificate's own, or an override for a directory one.
fn set_status(
    state: &AppState,
    kind: CertKind,
    id: &str,
    q: &QueryMap,
    allowed: &[CertStatus],
) -> Result<(), ApiError> {
    let id = check_cert_id(id)?;
    let status = q
        .str("newStatus")
        .map(|s| parse_status(s, allowed))
        .transpose()?;
    let exists =
        state.store.cert_get(kind, &id)?.is_some() || in_directories(state, kind, &id)?.is_some();
    if !exists {
        return Err(ApiError::not_found(kind_name(kind), &id));
    }
    if let Some(status) = status {
        state
            .store
            .cert_status_set(&id, status, state.audit.now_ms())?;
    }
    Ok(())
}

async fn cert_update(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    q.required("newStatus")?;
    set_status(&state, CertKind::Device, &id, &q, DEVICE_SETTABLE)?;
    Ok(empty())
}

async fn ca_update(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    q: QueryMap,
    ApiBytes(_body): ApiBytes,
) -> Result<Json<JsonValue>, ApiError> {
    set_status(&state, CertKind::Ca, &id, &q, CA_SETTABLE)?;
    if let Some(a) = q.str("newAutoRegistrationStatus") {
        if a != "ENABLE" && a != "DISABLE" {
            return Err(ApiError::InvalidRequest(format!(
                "newAutoRegistrationStatus must be ENABLE or DISABLE; got '{a}'"
            )));
        }
        let id = check_cert_id(&id)?;
        state
            .store
            .ca_auto_registration_set(&id, a, state.audit.now_ms())?;
    }
    Ok(empty())
}

fn delete(state: &AppState, kind: CertKind, id: &str) -> Result<Json<JsonValue>, ApiError> {
    let id = check_cert_id(id)?;
    let rec = registered(state, kind, &id)?;
    if rec.status == CertStatus::Active {
        return Err(ApiError::CertificateState(format!(
            "{} {id} is ACTIVE; deactivate it before deleting it",
            kind_name(kind)
        )));
    }
    state.store.cert_delete(kind, &id)?;
    Ok(empty())
}

async fn cert_delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    delete(&state, CertKind::Device, &id)
}

async fn ca_delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    delete(&state, CertKind::Ca, &id)
}

// ---------------------------------------------------------------------------------------------
// Policies

/// A policy name: `[\w+=,.@-]{1,128}`.
fn check_policy_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(ApiError::InvalidRequest(format!(
            "policyName '{name}' must be 1..128 characters of [a-zA-Z0-9_+=,.@-]"
        )));
    }
    Ok(())
}

/// A policy document must be a JSON object (AWS answers MalformedPolicyException otherwise).
fn check_document(doc: &str) -> Result<(), ApiError> {
    match serde_json::from_str::<JsonValue>(doc) {
        Ok(JsonValue::Object(_)) => Ok(()),
        Ok(_) => Err(ApiError::InvalidRequest(
            "policyDocument must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::InvalidRequest(format!(
            "policyDocument is not JSON: {e}"
        ))),
    }
}

fn policy_version(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::InvalidRequest(format!("policyVersionId '{v}' must be digits")))
}

/// The document of a policy read from the policy directory (`<name>.json`).
fn dir_policy(state: &AppState, name: &str) -> Option<String> {
    let dir = state.audit.files()?.policy_dir.as_ref()?;
    std::fs::read_to_string(dir.join(format!("{name}.json"))).ok()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyIn {
    policy_document: String,
    tags: Option<JsonValue>,
}

async fn policy_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PolicyIn>,
) -> Result<Json<JsonValue>, ApiError> {
    check_policy_name(&name)?;
    check_document(&body.policy_document)?;
    let _ = body.tags;
    let arn = state.arn(&format!("policy/{name}"));
    if dir_policy(&state, &name).is_some()
        || !state
            .store
            .policy_create(&name, &body.policy_document, state.audit.now_ms())?
    {
        return Err(ApiError::AlreadyExists {
            message: format!("Policy '{name}' already exists"),
            resource_id: name,
            resource_arn: arn,
        });
    }
    Ok(Json(json!({
        "policyName": name,
        "policyArn": arn,
        "policyDocument": body.policy_document,
        "policyVersionId": "1",
    })))
}

fn policy_not_found(name: &str) -> ApiError {
    ApiError::not_found("Policy", name)
}

/// A policy version is named `<policy>/<version>`.
fn version_not_found(name: &str, version: &str) -> ApiError {
    ApiError::not_found("Policy version", &format!("{name}/{version}"))
}

async fn policy_get(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_policy_name(&name)?;
    let arn = state.arn(&format!("policy/{name}"));
    if let Some(p) = state.store.policy_get(&name)? {
        let v = state
            .store
            .policy_version_get(&name, p.default_version)?
            .ok_or_else(|| ApiError::internal("default policy version missing"))?;
        return Ok(Json(json!({
            "policyName": name,
            "policyArn": arn,
            "policyDocument": v.document,
            "defaultVersionId": p.default_version.to_string(),
            "creationDate": millis_to_seconds(p.created_ms),
            "lastModifiedDate": millis_to_seconds(p.modified_ms),
        })));
    }
    let doc = dir_policy(&state, &name).ok_or_else(|| policy_not_found(&name))?;
    Ok(Json(json!({
        "policyName": name,
        "policyArn": arn,
        "policyDocument": doc,
        "defaultVersionId": "1",
    })))
}

async fn policies_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = marker_page(&q)?;
    let mut names: Vec<String> = state
        .store
        .policies_all()?
        .into_iter()
        .map(|p| p.name)
        .collect();
    if let Some(dir) = state.audit.files().and_then(|f| f.policy_dir.as_deref()) {
        let mut unreadable = Vec::new();
        names.extend(
            snapshot::dir_policies(dir, &mut unreadable)
                .into_iter()
                .map(|p| p.name),
        );
    }
    names.sort();
    names.dedup();
    if q.bool("ascendingOrder")? == Some(false) {
        names.reverse();
    }
    let (items, next) = page.slice(names);
    let items: Vec<JsonValue> = items
        .iter()
        .map(|n| json!({ "policyName": n, "policyArn": state.arn(&format!("policy/{n}")) }))
        .collect();
    Ok(Page::marker_response("policies", items, next))
}

fn version_json(state: &AppState, v: &PolicyVersionRecord) -> JsonValue {
    json!({
        "policyName": v.name,
        "policyArn": state.arn(&format!("policy/{}", v.name)),
        "policyDocument": v.document,
        "policyVersionId": v.version.to_string(),
        "isDefaultVersion": v.is_default,
        "creationDate": millis_to_seconds(v.created_ms),
        "lastModifiedDate": millis_to_seconds(v.created_ms),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VersionIn {
    policy_document: String,
    set_as_default: Option<bool>,
}

async fn policy_version_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    q: QueryMap,
    ApiJson(body): ApiJson<VersionIn>,
) -> Result<Json<JsonValue>, ApiError> {
    check_policy_name(&name)?;
    check_document(&body.policy_document)?;
    let set_default = q
        .bool("setAsDefault")?
        .or(body.set_as_default)
        .unwrap_or(false);
    let v = state
        .store
        .policy_version_create(
            &name,
            &body.policy_document,
            set_default,
            state.audit.now_ms(),
        )
        .map_err(|e| policy_version_error(&name, e))?;
    let mut out = version_json(&state, &v);
    if let Some(o) = out.as_object_mut() {
        o.remove("policyName");
        o.remove("creationDate");
        o.remove("lastModifiedDate");
    }
    Ok(Json(out))
}

async fn policy_versions_list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_policy_name(&name)?;
    if state.store.policy_get(&name)?.is_none() {
        return Err(policy_not_found(&name));
    }
    let versions: Vec<JsonValue> = state
        .store
        .policy_versions(&name)?
        .iter()
        .map(|v| {
            json!({
                "versionId": v.version.to_string(),
                "isDefaultVersion": v.is_default,
                "createDate": millis_to_seconds(v.created_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "policyVersions": versions })))
}

async fn policy_version_get(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<JsonValue>, ApiError> {
    check_policy_name(&name)?;
    let n = policy_version(&version)?;
    let v = state
        .store
        .policy_version_get(&name, n)?
        .ok_or_else(|| version_not_found(&name, &version))?;
    Ok(Json(version_json(&state, &v)))
}

async fn policy_default_set(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<JsonValue>, ApiError> {
    check_policy_name(&name)?;
    let n = policy_version(&version)?;
    if !state
        .store
        .policy_default_set(&name, n, state.audit.now_ms())?
    {
        return Err(version_not_found(&name, &version));
    }
    Ok(empty())
}

async fn policy_version_delete(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<JsonValue>, ApiError> {
    check_policy_name(&name)?;
    let n = policy_version(&version)?;
    let v = state
        .store
        .policy_version_get(&name, n)?
        .ok_or_else(|| version_not_found(&name, &version))?;
    if v.is_default {
        return Err(ApiError::RegistryConflict {
            error_type: "DeleteConflictException",
            message: "The default version of a policy cannot be deleted".into(),
        });
    }
    state.store.policy_version_delete(&name, n)?;
    Ok(empty())
}

async fn policy_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_policy_name(&name)?;
    if state.store.policy_get(&name)?.is_none() {
        return Err(policy_not_found(&name));
    }
    if state
        .store
        .policy_targets_all()?
        .iter()
        .any(|(p, _)| *p == name)
    {
        return Err(ApiError::RegistryConflict {
            error_type: "DeleteConflictException",
            message: format!("Policy '{name}' is attached; detach it first"),
        });
    }
    state.store.policy_delete(&name)?;
    Ok(empty())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetIn {
    target: String,
}

fn policy_target(
    state: &AppState,
    name: &str,
    target: &str,
    attached: bool,
) -> Result<(), ApiError> {
    check_policy_name(name)?;
    if state.store.policy_get(name)?.is_none() && dir_policy(state, name).is_none() {
        return Err(policy_not_found(name));
    }
    if target.is_empty() || target.len() > 2048 {
        return Err(ApiError::InvalidRequest(
            "target must be 1..2048 characters".into(),
        ));
    }
    state.store.policy_target_set(name, target, attached)?;
    Ok(())
}

async fn policy_attach(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<TargetIn>,
) -> Result<Json<JsonValue>, ApiError> {
    policy_target(&state, &name, &body.target, true)?;
    Ok(empty())
}

async fn policy_detach(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<TargetIn>,
) -> Result<Json<JsonValue>, ApiError> {
    policy_target(&state, &name, &body.target, false)?;
    Ok(empty())
}

// ---------------------------------------------------------------------------------------------
// Thing principals

fn principal_header(headers: &HeaderMap) -> Result<String, ApiError> {
    let p = headers
        .get("x-amzn-principal")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::InvalidRequest("The x-amzn-principal header is required".into())
        })?;
    if p.is_empty() || p.len() > 2048 {
        return Err(ApiError::InvalidRequest(
            "principal must be 1..2048 characters".into(),
        ));
    }
    Ok(p.to_owned())
}

fn thing_exists(state: &AppState, thing: &str) -> Result<(), ApiError> {
    ThingName::try_from(thing.to_owned())?;
    if state.store.thing_get(thing)?.is_none() {
        return Err(ApiError::not_found("Thing", &thing));
    }
    Ok(())
}

async fn principal_attach(
    State(state): State<AppState>,
    ApiPath(thing): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, ApiError> {
    thing_exists(&state, &thing)?;
    let principal = principal_header(&headers)?;
    state.store.thing_principal_set(&thing, &principal, true)?;
    Ok(empty())
}

async fn principal_detach(
    State(state): State<AppState>,
    ApiPath(thing): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, ApiError> {
    thing_exists(&state, &thing)?;
    let principal = principal_header(&headers)?;
    state.store.thing_principal_set(&thing, &principal, false)?;
    Ok(empty())
}

async fn principals_list(
    State(state): State<AppState>,
    ApiPath(thing): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    thing_exists(&state, &thing)?;
    let page = q.page(25, 250)?;
    let (items, next) = page.slice(state.store.thing_principals(&thing)?);
    Ok(Page::response("principals", items, next))
}

// ---------------------------------------------------------------------------------------------
// Logging options

const LOG_LEVELS: [&str; 5] = ["DEBUG", "INFO", "ERROR", "WARN", "DISABLED"];

async fn logging_get(State(state): State<AppState>) -> Result<Json<JsonValue>, ApiError> {
    let options = state.store.logging_get()?.unwrap_or_default();
    Ok(Json(
        serde_json::to_value(options).map_err(ApiError::internal)?,
    ))
}

async fn logging_set(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoggingOptions>,
) -> Result<Json<JsonValue>, ApiError> {
    if let Some(l) = body.default_log_level.as_deref()
        && !LOG_LEVELS.contains(&l)
    {
        return Err(ApiError::InvalidRequest(format!(
            "defaultLogLevel must be one of {}; got '{l}'",
            LOG_LEVELS.join(", ")
        )));
    }
    if let Some(r) = body.role_arn.as_deref()
        && !(20..=2048).contains(&r.len())
    {
        return Err(ApiError::InvalidRequest(
            "roleArn must be 20..2048 characters".into(),
        ));
    }
    state.store.logging_set(&body)?;
    Ok(empty())
}

// ---------------------------------------------------------------------------------------------
// CRLs (thingward's own)

fn check_crl_name(name: &str) -> Result<(), ApiError> {
    thingward_models::names::check_resource_name("CRL name", name)?;
    Ok(())
}

async fn crl_put(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<JsonValue>, ApiError> {
    check_crl_name(&name)?;
    let pem = std::str::from_utf8(&body)
        .map_err(|_| ApiError::InvalidRequest("The CRL must be PEM text".into()))?;
    let bundle = thingward_audit::parse_pem_bundle(pem, &name);
    if let Some(p) = bundle.problems.first() {
        return Err(ApiError::InvalidRequest(format!(
            "The CRL does not parse ({}): {}",
            p.source, p.message
        )));
    }
    if bundle.crls.is_empty() {
        return Err(ApiError::InvalidRequest(
            "The body holds no PEM X509 CRL block".into(),
        ));
    }
    let created = state.store.crl_put(&name, pem, state.audit.now_ms())?;
    Ok(Json(json!({ "name": name, "created": created })))
}

async fn crl_get(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_crl_name(&name)?;
    let rec = state
        .store
        .crl_get(&name)?
        .ok_or_else(|| ApiError::not_found("CRL", &name))?;
    Ok(Json(json!({
        "name": rec.name,
        "crlPem": rec.pem,
        "creationDate": millis_to_seconds(rec.created_ms),
        "lastModifiedDate": millis_to_seconds(rec.modified_ms),
    })))
}

async fn crl_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_crl_name(&name)?;
    if !state.store.crl_delete(&name)? {
        return Err(ApiError::not_found("CRL", &name));
    }
    Ok(empty())
}

async fn crls_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = q.page(25, 250)?;
    let (items, next) = page.slice(state.store.crls_all()?);
    let items: Vec<JsonValue> = items
        .iter()
        .map(|c| json!({ "name": c.name, "lastModifiedDate": millis_to_seconds(c.modified_ms) }))
        .collect();
    Ok(Page::response("crls", items, next))
}
