//! Tests of `cargo xtask logs`: parsing and rendering the functions' log lines, filters, tailing.

use super::*;

const HTTP: &str = r#"{"level":"INFO","message":"user registered","user_id":"01M8AJ0DZ2PCGWF923HYGQYE1Q","span":{"client_ip":"10.105.229.196","cold_start":true,"correlation_id":"cae56a5f-72f0-4c55-9ddb-06bd32189f4b","function":"register","method":"POST","path":"/api/v1/auth/register","request_id":"cae56a5f-72f0-4c55-9ddb-06bd32189f4b","trace_id":"Root=1-6b0774c3-c40e78ce5434370cc055eb32;Parent=95de2007f109e6c6;Sampled=1","name":"request"}}"#;
const CONSUMER: &str = r#"{"timestamp":"2026-11-25T23:53:01.123456Z","level":"WARN","message":"message parked","reason":"invalid event: missing field `data`","span":{"cold_start":false,"correlation_id":"77e5a1b2-0000-4000-8000-000000000000","event_id":"01M8AJ0DZ3BQJE719JBMNZPP2B","function":"on-order-placed","message_id":"044e7f91-121d-47bd-aa0d-564b39d584d5","receive_count":"1","request_id":"d977ba6a-1fcc-4f24-bc7c-3db992272c30","name":"message"}}"#;
const RUNTIME: &str = r#"{"level":"ERROR","message":"Lambda Runtime API returned non-200 response","status":"500 Internal Server Error","span":{"requestId":"d977ba6a-1fcc-4f24-bc7c-3db992272c30","xrayTraceId":"Root=1-6b0774ca-5f99def2c7f51820fdffcda1;Parent=4ec05b4ede20a763;Sampled=1","name":"Lambda runtime invoke"}}"#;
const EMF: &str = r#"{"ClientErrors":0.0,"CorrelationId":"cae56a5f-72f0-4c55-9ddb-06bd32189f4b","Function":"get-health","Latency":12.733231,"Requests":1.0,"ServerErrors":0.0,"_aws":{"CloudWatchMetrics":[{"Dimensions":[["Function"]],"Metrics":[{"Name":"Requests","Unit":"Count"},{"Name":"ClientErrors","Unit":"Count"},{"Name":"ServerErrors","Unit":"Count"},{"Name":"Latency","Unit":"Milliseconds"}],"Namespace":"Shop"}],"Timestamp":1795650754287}}"#;
const WATCH: &str =
    r#" INFO spawning function instance function="get-health" instance_id=39dd8229-ae58-43df-9517-402f769f933f"#;
const PANIC: &str = "thread 'main' panicked at functions/login/src/main.rs:12:5:";
const RELOAD: &str = " ERROR command killed code=ForceStop";

fn plain(filter: Filter, lines: &[&str]) -> Vec<String> {
    let mut view = View::new(filter);
    let mut out = anstream::AutoStream::new(Vec::new(), anstream::ColorChoice::Never);
    for line in lines {
        if let Some(text) = view.render(line, None) {
            writeln!(out, "{text}").unwrap();
        }
    }
    String::from_utf8(out.into_inner()).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn a_request_record_reads_as_one_line_with_its_ids_fields_and_context() {
    let lines = plain(Filter::default(), &[HTTP]);
    assert_eq!(
        lines,
        [concat!(
            "             INFO  register         req:cae56a5f corr:cae56a5f user registered ",
            "user_id=01M8AJ0DZ2PCGWF923HYGQYE1Q cold client_ip=10.105.229.196 method=POST path=/api/v1/auth/register"
        )]
    );
}

#[test]
fn a_consumer_record_shows_its_time_and_quotes_values_with_spaces() {
    let lines = plain(Filter::default(), &[CONSUMER]);
    assert_eq!(
        lines,
        [concat!(
            "23:53:01.123 WARN  on-order-placed  req:d977ba6a corr:77e5a1b2 message parked ",
            "reason=\"invalid event: missing field `data`\" ",
            "event_id=01M8AJ0DZ3BQJE719JBMNZPP2B message_id=044e7f91-121d-47bd-aa0d-564b39d584d5 receive_count=1"
        )]
    );
}

#[test]
fn the_runtime_s_own_lines_get_the_function_of_their_request() {
    let lines = plain(Filter { functions: vec!["on-order-placed".into()], ..Filter::default() }, &[CONSUMER, RUNTIME]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("ERROR on-order-placed  req:d977ba6a corr:-------- Lambda Runtime API returned"));
}

#[test]
fn filters_pick_by_request_correlation_function_and_level() {
    let all = [HTTP, CONSUMER, RUNTIME, EMF, WATCH, PANIC, RELOAD];
    let by = |filter: Filter| plain(filter, &all).len();
    assert_eq!(by(Filter::default()), 4, "records and the panic; no metrics, no watch chatter, no reload");
    assert_eq!(by(Filter { all: true, metrics: true, ..Filter::default() }), 7);
    assert_eq!(by(Filter { request_id: Some("cae56a5f".into()), ..Filter::default() }), 1);
    assert_eq!(by(Filter { request_id: Some("d977ba6a-1fcc".into()), ..Filter::default() }), 2);
    assert_eq!(by(Filter { correlation_id: Some("77e5".into()), ..Filter::default() }), 1);
    assert_eq!(by(Filter { functions: vec!["register".into(), "get-health".into()], ..Filter::default() }), 1);
    assert_eq!(by(Filter { functions: vec!["get-health".into()], metrics: true, ..Filter::default() }), 1);
    assert_eq!(by(Filter { correlation_id: Some("cae5".into()), metrics: true, ..Filter::default() }), 2);
    assert_eq!(by(Filter { level: Some(Level::Warn), ..Filter::default() }), 3, "warn, error and the panic");
    assert_eq!(by(Filter { level: Some(Level::Error), ..Filter::default() }), 2);
}

#[test]
fn a_chosen_correlation_id_shows_whole_and_an_unknown_one_as_dashes() {
    let chosen = HTTP
        .replace("\"correlation_id\":\"cae56a5f-72f0-4c55-9ddb-06bd32189f4b\"", "\"correlation_id\":\"checkout-7f3a\"");
    let unknown =
        CONSUMER.replace("77e5a1b2-0000-4000-8000-000000000000", "").replace("01M8AJ0DZ3BQJE719JBMNZPP2B", "");
    let lines = plain(Filter::default(), &[&chosen, &unknown]);
    assert!(lines[0].contains("req:cae56a5f corr:checkout-7f3a user registered"), "{lines:?}");
    assert!(lines[1].contains("req:d977ba6a corr:-------- message parked"), "{lines:?}");
    assert!(!lines[1].contains("event_id"), "an empty span field is left out: {lines:?}");
    let by_correlation = Filter { correlation_id: Some("checkout-7f3a".into()), ..Filter::default() };
    assert_eq!(plain(by_correlation, &[&chosen, &unknown]).len(), 1);
}

#[test]
fn an_emf_document_reads_as_its_metrics() {
    let lines = plain(Filter { metrics: true, ..Filter::default() }, &[EMF]);
    assert_eq!(
        lines,
        [concat!(
            "23:52:34.287 EMF   get-health       Requests=1 ClientErrors=0 ServerErrors=0 Latency=12.733231ms ",
            "CorrelationId=cae56a5f-72f0-4c55-9ddb-06bd32189f4b"
        )]
    );
}

#[test]
fn watch_lines_are_dimmed_and_errors_stand_out_in_colour() {
    let mut view = View::new(Filter { all: true, ..Filter::default() });
    let watch = view.render(WATCH, None).unwrap();
    assert!(watch.starts_with("\u{1b}[2m") && watch.contains("spawning function instance"), "{watch:?}");
    let panic = view.render(PANIC, None).unwrap();
    assert!(panic.starts_with("\u{1b}[31m"), "{panic:?}");
    let record = view.render(RUNTIME, None).unwrap();
    assert!(record.contains("\u{1b}[1m\u{1b}[31mERROR"), "{record:?}");
}

#[test]
fn a_followed_file_yields_complete_lines_and_notices_a_restart() {
    let dir = std::env::temp_dir().join(format!("xtask-logs-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("functions.log");
    std::fs::write(&path, "one\ntw").unwrap();
    let mut tail = Tail::open(&path).unwrap();
    assert_eq!(tail.read_lines().unwrap(), ["one"]);
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"o\nthree\n").unwrap();
    assert!(!tail.restarted().unwrap());
    assert_eq!(tail.read_lines().unwrap(), ["two", "three"]);
    std::fs::write(&path, "new\n").unwrap();
    assert!(tail.restarted().unwrap());
    assert_eq!(tail.read_lines().unwrap(), ["new"]);
    std::fs::remove_dir_all(dir).unwrap();
}
