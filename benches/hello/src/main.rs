//! The benchmark's floor: the smallest useful Rust Lambda (lambda_runtime, a fixed JSON answer,
//! no AWS SDK, no I/O). No function doing real work can start or answer faster.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({"statusCode": 200, "body": "{\"hello\":\"world\"}"}))
    }))
    .await
}
