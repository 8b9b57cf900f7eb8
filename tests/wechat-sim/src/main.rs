//! `wechat-sim`: runs the WeChat simulator standalone.
//!
//! ```text
//! wechat-sim [--host 127.0.0.1] [--port 9100] [--appid ID] [--secret S] [--corpid ID]
//!            [--corpsecret S] [--invoices FILE.json] [--options '{"same_status_ok":false}']
//! ```

use std::net::SocketAddr;

use wechat_sim::{Options, Sim, DEFAULT_INVOICES};

fn usage() -> ! {
    eprintln!(
        "usage: wechat-sim [--host H] [--port N] [--appid ID] [--secret S] [--corpid ID] \
         [--corpsecret S] [--invoices FILE] [--options JSON]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut host = "127.0.0.1".to_string();
    let mut port: u16 = 9100;
    let mut options = Options::default();
    let mut invoices = DEFAULT_INVOICES.to_string();
    let mut patch = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--host" => host = value(),
            "--port" => port = value().parse().unwrap_or_else(|_| usage()),
            "--appid" => options.appid = value(),
            "--secret" => options.secret = value(),
            "--corpid" => options.corpid = value(),
            "--corpsecret" => options.corpsecret = value(),
            "--invoices" => {
                let path = value();
                invoices = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    eprintln!("wechat-sim: {path}: {e}");
                    std::process::exit(2)
                })
            }
            "--options" => patch = Some(value()),
            _ => usage(),
        }
    }
    if let Some(patch) = patch {
        let mut current = serde_json::to_value(&options).expect("options serialize");
        let extra: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&patch)
            .unwrap_or_else(|e| {
                eprintln!("wechat-sim: --options: {e}");
                std::process::exit(2)
            });
        if let serde_json::Value::Object(m) = &mut current {
            m.extend(extra);
        }
        options = serde_json::from_value(current).unwrap_or_else(|e| {
            eprintln!("wechat-sim: --options: {e}");
            std::process::exit(2)
        });
    }
    let addr: SocketAddr = format!("{host}:{port}").parse().unwrap_or_else(|_| usage());
    let sim = Sim::new(options, &invoices).unwrap_or_else(|e| {
        eprintln!("wechat-sim: {e}");
        std::process::exit(2)
    });
    let running = sim.start(addr).await.unwrap_or_else(|e| {
        eprintln!("wechat-sim: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    println!("wechat-sim listening on {}", running.base_url());
    let _ = tokio::signal::ctrl_c().await;
}
