//! The auditable part of the AWS IoT registry at AWS's paths, one module per resource: device
//! and CA certificates, IoT policies (with their targets) and their versions, thing
//! principals, the account's logging options; and CRLs at thingward's own path (AWS has no CRL
//! API).

mod ca_certificates;
mod certificates;
mod crls;
mod logging_options;
mod policies;
mod policy_versions;
mod principals;

use super::AppState;
use super::error::ApiError;
use super::extract::{Page, QueryMap};
use axum::Router;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .merge(certificates::routes())
        .merge(ca_certificates::routes())
        .merge(policies::routes())
        .merge(policy_versions::routes())
        .merge(principals::routes())
        .merge(logging_options::routes())
        .merge(crls::routes())
}

/// ListCertificates / ListCACertificates page with `marker` / `pageSize` (AWS's names).
pub(super) fn marker_page(q: &QueryMap) -> Result<Page, ApiError> {
    let size = q.int("pageSize", 1..=250)?;
    Page::from_parts(q.str("marker"), size, "pageSize", 25, 250)
}
