//! Device certificates (RegisterCertificate, RegisterCertificateWithoutCA, DescribeCertificate,
//! ListCertificates, UpdateCertificate, DeleteCertificate), and what device and CA certificates
//! share: registration, description, listing, status and deletion by [`CertKind`]. A
//! certificate is either registered through the API (in the store) or read from the audit
//! configuration's directories.

use super::marker_page;
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, ApiPath, Page, QueryMap};
use crate::api::{AppState, empty};
use crate::audit::snapshot;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use thingward_models::time::{EpochMillis, millis_to_seconds};
use thingward_store::{CertKind, CertStatus, CertificateRecord};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/certificate/register", post(certificate_register))
        .route(
            "/certificate/register-no-ca",
            post(certificate_register_no_ca),
        )
        .route("/certificates", get(certificates_list))
        .route(
            "/certificates/{id}",
            get(certificate_describe)
                .put(certificate_update)
                .delete(certificate_delete),
        )
}

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
pub(super) fn check_cert_id(id: &str) -> Result<String, ApiError> {
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

pub(super) const CA_SETTABLE: &[CertStatus] = &[CertStatus::Active, CertStatus::Inactive];

/// The DER of a PEM certificate from a request; a PEM that does not parse is an
/// InvalidRequestException naming the problem.
pub(super) fn request_der(member: &str, pem: &str) -> Result<Vec<u8>, ApiError> {
    snapshot::pem_certificate(pem, member).map_err(|why| {
        ApiError::InvalidRequest(format!("{member} is not a usable certificate: {why}"))
    })
}

/// Registers a device or CA certificate; a duplicate is ResourceAlreadyExistsException.
pub(super) fn register(
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

pub(super) fn register_status(
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

async fn certificate_register(
    State(state): State<AppState>,
    q: QueryMap,
    ApiJson(body): ApiJson<CertRegister>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let status = register_status(
                &q,
                body.set_as_active,
                body.status.as_deref(),
                DEVICE_SETTABLE,
            )?;
            let ca_id = body
                .ca_certificate_pem
                .as_deref()
                .map(|pem| {
                    request_der("caCertificatePem", pem).map(|der| thingward_audit::cert_id(&der))
                })
                .transpose()?;
            register(
                state,
                CertKind::Device,
                &body.certificate_pem,
                status,
                ca_id,
                None,
            )
        })
        .await
}

async fn certificate_register_no_ca(
    State(state): State<AppState>,
    q: QueryMap,
    ApiJson(body): ApiJson<CertRegister>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
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
                state,
                CertKind::Device,
                &body.certificate_pem,
                status,
                None,
                None,
            )
        })
        .await
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

pub(super) fn describe(
    state: &AppState,
    kind: CertKind,
    id: &str,
) -> Result<Json<JsonValue>, ApiError> {
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

async fn certificate_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| describe(state, CertKind::Device, &id))
        .await
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

pub(super) fn list(
    state: &AppState,
    kind: CertKind,
    q: &QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
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

async fn certificates_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| list(state, CertKind::Device, &q))
        .await
}

/// Sets a status: a registered certificate's own, or an override for a directory one.
pub(super) fn set_status(
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

async fn certificate_update(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            q.required("newStatus")?;
            set_status(state, CertKind::Device, &id, &q, DEVICE_SETTABLE)?;
            Ok(empty())
        })
        .await
}

pub(super) fn delete(
    state: &AppState,
    kind: CertKind,
    id: &str,
) -> Result<Json<JsonValue>, ApiError> {
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

async fn certificate_delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| delete(state, CertKind::Device, &id))
        .await
}
