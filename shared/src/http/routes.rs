//! Which endpoint of a function answers each path.

use lambda_http::{Body, Error, Request, RequestExt, Response};

use crate::http::get_invoice_batch::get_invoice_batch;
use crate::http::get_invoice_info::get_invoice_info;
use crate::http::paths::{GET_INVOICE_INFO, UPDATE_INVOICE_STATUS};
use crate::http::update_invoice_status::update_invoice_status;
use crate::http::update_status::update_status;
use crate::tenant::Deployment;

/// The get-invoice-batch function: the invoice queries, batch and single, by path.
pub async fn invoice_query(deployment: &Deployment, req: Request) -> Result<Response<Body>, Error> {
    if req.raw_http_path() == GET_INVOICE_INFO {
        get_invoice_info(deployment, req).await
    } else {
        get_invoice_batch(deployment, req).await
    }
}

/// The update-status function: the status changes, batch and single, by path.
pub async fn invoice_status(
    deployment: &Deployment,
    req: Request,
) -> Result<Response<Body>, Error> {
    if req.raw_http_path() == UPDATE_INVOICE_STATUS {
        update_invoice_status(deployment, req).await
    } else {
        update_status(deployment, req).await
    }
}
