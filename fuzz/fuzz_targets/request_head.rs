//! The front's check of a connection's first request head (`http::head`): any bytes
//! get a verdict without panicking, and a head the front accepts is one actix-web's
//! own HTTP/1 parser accepts too, with the same method and target — so no request
//! passes the front and is then refused by the dispatcher with an empty body. The
//! same bytes, read as an answer, are told from a bare error head without panicking.
#![no_main]

use actix_codec::Decoder;
use actix_http::h1::{Codec, Message};
use actix_http::ServiceConfig;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tidings::http::head::{check_head, empty_error_status, MAX_HEAD};

thread_local! {
    /// actix-http's configuration starts a clock task, so it is made once, on a
    /// runtime of this thread's own.
    static RUNTIME: actix_rt::Runtime = actix_rt::Runtime::new().expect("a runtime");
    static CONFIG: ServiceConfig =
        RUNTIME.with(|rt| rt.block_on(async { ServiceConfig::default() }));
}

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_HEAD + 1024)];
    // The same bytes as an answer the dispatcher writes: told apart without panicking.
    if let Some(status) = empty_error_status(data) {
        assert!((400..600).contains(&status));
    }
    let Ok(Some(head)) = check_head(data) else {
        return;
    };
    assert!(head.len <= data.len());
    assert_eq!(check_head(&data[..head.len]), Ok(Some(head.clone())));
    let mut buf = BytesMut::from(&data[..head.len]);
    match CONFIG.with(|config| Codec::new(config.clone()).decode(&mut buf)) {
        Ok(Some(Message::Item(request))) => {
            assert_eq!(request.method().as_str(), head.method);
            // (A fragment is not part of a request's URI, for either.)
            let target = actix_http::Uri::try_from(head.target).expect("checked target");
            assert_eq!(request.uri(), &target);
        }
        other => panic!("the front accepted a head that actix refuses: {other:?}"),
    }
});
