//! `amika up`: start a server (embedded SQLite, local sandboxes) in the foreground and log the
//! CLI in to it — with the first admin's key on a fresh data dir, or with the key the first
//! start left in `DATA_DIR/admin-api-key`.

use super::server::{serve, ServeArgs};
use crate::config;

/// `amika up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Do not run the SSH endpoint (by default it listens next to the API: its port + 1 when
    /// free, else any free port).
    #[arg(long)]
    pub no_ssh: bool,
}

/// Where `amika up` runs the SSH endpoint: the API's address with the next port when it is
/// free, else a free port of the same address.
fn ssh_next_to(api: std::net::SocketAddr) -> std::net::SocketAddr {
    let next = api
        .port()
        .checked_add(1)
        .filter(|&p| api.port() != 0 && std::net::TcpListener::bind((api.ip(), p)).is_ok());
    std::net::SocketAddr::new(api.ip(), next.unwrap_or(0))
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let mut config = args.serve.config(true)?;
    if !args.no_ssh {
        config.ssh_listen = Some(ssh_next_to(config.listen));
    }
    let key_file = config.data_dir.join("admin-api-key");
    serve(config, |url, first_key| {
        let key = match first_key {
            Some(k) => Some(k.to_string()),
            None => std::fs::read_to_string(&key_file).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()),
        };
        match key {
            Some(key) => {
                let path = config::save_login(url, &key)?;
                if first_key.is_some() {
                    eprintln!("Created the first admin user \"admin\" in org \"default\"; its API key is in {}", key_file.display());
                }
                eprintln!("Logged the CLI in ({})", path.display());
            }
            None => eprintln!("CLI config unchanged: log in with `amika auth login --url {url} --api-key ...`"),
        }
        crate::outln!("amika is running at {url} (Ctrl-C to stop)");
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_listens_next_to_the_api_when_that_port_is_free() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        // The port after a taken one's predecessor is taken: any free port then.
        let api: std::net::SocketAddr = format!("127.0.0.1:{}", port - 1).parse().unwrap();
        assert_eq!(ssh_next_to(api).port(), 0);
        assert_eq!(ssh_next_to("127.0.0.1:0".parse().unwrap()).port(), 0);
        drop(taken);
        assert_eq!(ssh_next_to(api).port(), port);
    }
}
