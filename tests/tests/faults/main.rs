//! Fault injection: real function binaries, each started on its own under a
//! Lambda Runtime API, with one AWS endpoint behind a fault proxy (black
//! hole, throttling, server errors, delays), so a fault never touches the
//! shared stack. What users of the API and producers of events must see:
//! a quick 503 with Retry-After or a retried record, never a lost write, a
//! partial write, or an event handled twice.

mod commit;
mod consumers;
mod emailed_links;
mod harness;
use tests::helpers;
mod mail;
mod queued_work;
mod queues;
mod secrets;
mod table;
