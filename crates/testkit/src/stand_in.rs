//! Local stand-ins for the services slipway calls (a webhook target, Docker Hub's API): an axum
//! router served on 127.0.0.1 from a thread of its own, so that a synchronous test can run
//! `slipway` as a process beside it.

/// Serves `router` on a free port of 127.0.0.1 until the test process ends; returns the port.
pub fn serve(router: axum::Router) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let port = listener
        .local_addr()
        .expect("the listener's address")
        .port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the stand-in");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            axum::serve(listener, router)
                .await
                .expect("the stand-in serves");
        });
    });
    port
}
