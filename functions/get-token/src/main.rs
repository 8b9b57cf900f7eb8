//! Lambda `get-token`: wires configuration and clients once per process, then serves
//! `wxinvoice::http::get_token`.

use lambda_http::{service_fn, Error, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    wxinvoice::runtime::init_process();
    let deployment = wxinvoice::Deployment::from_env().await?;
    let deployment = &deployment;
    wxinvoice::runtime::run(service_fn(move |req: Request| async move {
        wxinvoice::http::get_token(deployment, req).await
    }))
    .await
}
