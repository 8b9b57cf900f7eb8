//! Lambda `get-invoice-batch`: wires configuration and clients once per process, then serves
//! `wxinvoice::handlers::invoice_query` (getInvoiceBatch and getInvoiceInfo).

use lambda_http::{service_fn, Error, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    wxinvoice::init_process();
    let app = wxinvoice::App::from_env().await?;
    let app = &app;
    wxinvoice::runtime::run(service_fn(move |req: Request| async move {
        wxinvoice::handlers::invoice_query(app, req).await
    }))
    .await
}
