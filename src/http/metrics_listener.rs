//! `metrics_listen`: `GET /metrics` served on an address of its own as well, so that
//! a scraper can reach it on a private interface while the main port stays public.
//! Nothing else is answered there (404 in JSON), and no rate limit applies.

use std::io;
use std::net::TcpListener;

use actix_server::Server;
use actix_web::{web, App, HttpServer};

use super::{health, json_errors, not_found, resource, AppState};

/// Serves `/metrics` on `listener` with one worker; stopped by the server's shutdown
/// like the main listener (its own signal handling is off).
pub fn serve(listener: TcpListener, state: web::Data<AppState>) -> io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(json_errors())
            .service(resource("/metrics").route(web::get().to(health::metrics)))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .shutdown_timeout(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
