//! CA certificates: RegisterCACertificate, DescribeCACertificate, ListCACertificates,
//! UpdateCACertificate, DeleteCACertificate (the shared work is in [`super::certificates`]).

use super::certificates::{
    CA_SETTABLE, check_cert_id, delete, describe, list, register, register_status, request_der,
    set_status,
};
use crate::api::error::ApiError;
use crate::api::extract::{ApiBytes, ApiJson, ApiPath, QueryMap};
use crate::api::{AppState, empty};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value as JsonValue;
use thingward_store::CertKind;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/cacertificate", post(ca_certificate_register))
        .route("/cacertificates", get(ca_certificates_list))
        .route(
            "/cacertificate/{id}",
            get(ca_certificate_describe)
                .put(ca_certificate_update)
                .delete(ca_certificate_delete),
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

async fn ca_certificate_register(
    State(state): State<AppState>,
    q: QueryMap,
    ApiJson(body): ApiJson<CaRegister>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
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
                state,
                CertKind::Ca,
                &body.ca_certificate,
                status,
                None,
                Some(if auto { "ENABLE" } else { "DISABLE" }.into()),
            )
        })
        .await
}

async fn ca_certificate_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| describe(state, CertKind::Ca, &id))
        .await
}

async fn ca_certificates_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| list(state, CertKind::Ca, &q))
        .await
}

async fn ca_certificate_update(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    q: QueryMap,
    ApiBytes(_body): ApiBytes,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            set_status(state, CertKind::Ca, &id, &q, CA_SETTABLE)?;
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
        })
        .await
}

async fn ca_certificate_delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| delete(state, CertKind::Ca, &id))
        .await
}
