//! `assay serve`: the graders' review UI.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use assay::diag::InputError;

#[derive(clap::Args)]
pub struct Args {
    /// Database URL (default sqlite://DATA_DIR/assay.db).
    #[arg(long)]
    db: Option<String>,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: std::net::SocketAddr,
    /// Show candidate ids and repositories (blind review is the default).
    #[arg(long)]
    reveal: bool,
}

pub fn exec(g: &super::Global, a: Args) -> Result<ExitCode> {
    let settings = g.settings(super::db_flag(&a.db))?;
    if settings.graders.is_empty() {
        return Err(
            InputError::file(Path::new("settings"), "no graders are set up, so nobody could sign in")
                .with_hint(
                    "add one with `assay grader add NAME` (it prints their token), then start `assay serve` again",
                )
                .into(),
        );
    }
    super::runtime()?.block_on(async {
        let store = super::open_store(&settings).await?;
        let options = assay::web::Options { blind: !a.reveal };
        let app = assay::web::App::new(store, settings.graders.clone(), options);
        assay::web::serve(app, a.addr).await?;
        Ok(ExitCode::SUCCESS)
    })
}
