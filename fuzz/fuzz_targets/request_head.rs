//! The front's check of a connection's first request head (`http::head`): any bytes
//! get a verdict without panicking, and a head the front accepts is one actix-web's
//! own HTTP/1 parser accepts too, with the same method and target — so no request
//! passes the front and is then refused by the dispatcher with an empty body.
#![no_main]

use actix_codec::Decoder;
use actix_http::h1::{Codec, Message};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tidings::http::head::{check_head, MAX_HEAD};

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_HEAD + 1024)];
    let Ok(Some(head)) = check_head(data) else {
        return;
    };
    assert!(head.len <= data.len());
    assert_eq!(check_head(&data[..head.len]), Ok(Some(head.clone())));
    let mut buf = BytesMut::from(&data[..head.len]);
    match Codec::default().decode(&mut buf) {
        Ok(Some(Message::Item(request))) => {
            assert_eq!(request.method().as_str(), head.method);
            assert_eq!(request.uri().to_string(), head.target);
        }
        other => panic!("the front accepted a head that actix refuses: {other:?}"),
    }
});
