//! The publish pipeline: numbering and storing each message (`writer`, with a single
//! SQLite node's `journal`), handing it to the broker and the cluster once stored, and
//! reading history back (`history`: the journal merged with the table).

pub mod history;
pub mod journal;
pub mod writer;
